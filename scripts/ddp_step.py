"""Timed DDP training steps of the separator on whatever torchrun gives (GPUs: NCCL, CPUs: gloo):
tuples/s over the global batch and peak memory per rank. Used by scripts/gpu-smoke.sh.

    torchrun --standalone --nproc_per_node 2 scripts/ddp_step.py [--steps 30] [--batch 64] [--width 0.25]
"""

from __future__ import annotations

import argparse
import time

import torch

from avgas import distributed, losses, models


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch", type=int, default=64, help="global batch")
    ap.add_argument("--width", type=float, default=0.25)
    ap.add_argument("--frames", type=int, default=98)
    a = ap.parse_args()
    cuda = torch.cuda.is_available()
    w = distributed.setup("cuda" if cuda else "cpu")
    device = torch.device("cuda", w.local_rank) if cuda else torch.device("cpu")
    torch.manual_seed(0)
    net = distributed.wrap(models.Separator(width=a.width).to(device), w)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    spec = torch.randn(a.batch, 257, a.frames, generator=g)
    targets = {"A": tuple(torch.randn(a.batch, models.FEATURE_DIM, generator=g).to(device) for _ in range(2))}
    mine = distributed.split(torch.arange(a.batch), w)
    x = spec[mine].to(device)
    times = []
    for i in range(a.steps + 3):
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            hs = tuple(distributed.gather(h.float()) for h in net(x))
            loss = losses.separator_loss(hs, targets, "A2A")
        opt.zero_grad()
        loss.backward()
        opt.step()
        if cuda:
            torch.cuda.synchronize()
        if i >= 3:
            times.append(time.perf_counter() - t0)
    step = sorted(times)[len(times) // 2]
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if cuda else float("nan")
    if w.main:
        print(
            f"DDP {w.size} rank(s) on {'cuda' if cuda else 'cpu'}: global batch {a.batch}, step {step * 1000:.1f} ms, "
            f"{a.batch / step:.0f} tuples/s, peak memory {peak:.0f} MiB per rank, loss {float(loss):.3f}"
        )
    distributed.teardown()


if __name__ == "__main__":
    main()

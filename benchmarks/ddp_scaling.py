"""Separator training throughput with data parallelism (issue 15): tuples/s for 1 and 2 ranks on
this machine's CPU (gloo), the communication share of a step, and a written estimate of the paper's
run (20,000 tuples x 50 epochs, 257 x 1004 spectrograms, full-width ResNet-18) on 1, 4 and 8 GPUs.
Numbers for the issue notes, not a test.

    .venv/bin/python benchmarks/ddp_scaling.py [--steps 20] [--width 0.25] [--frames 98]

How the communication share is measured: the 2-rank step is timed, and so is the same per-rank
work alone (one process, batch B/2, no collectives); share = 1 - alone / 2-rank step.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from avgas import distributed, losses, models

DIM = 2048


def _batch(n: int, frames: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 257, frames, generator=g), {"A": tuple(torch.randn(n, DIM, generator=g) for _ in range(2))}


def _step_seconds(w: distributed.World, batch: int, frames: int, width: float, steps: int, comm: bool = True) -> float:
    """Median seconds of one training step (forward, A2A loss on the global batch, backward, Adam)."""
    torch.manual_seed(0)
    net = (
        distributed.wrap(models.Separator(width=width, dim=DIM), w) if comm else models.Separator(width=width, dim=DIM)
    )
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    spec, targets = _batch(batch, frames)
    local = distributed.split(torch.arange(batch), w) if comm and w.parallel else torch.arange(batch // w.size)
    times = []
    for i in range(steps + 2):
        t0 = time.perf_counter()
        hs = net(spec[local])
        if comm and w.parallel:
            hs = tuple(distributed.gather(h) for h in hs)
            tg = targets
        else:
            tg = {"A": tuple(t[local] for t in targets["A"])}
        loss = losses.separator_loss(hs, tg, "A2A")
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= 2:  # two warm-up steps
            times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def _worker(rank, size, init, out, kw):
    torch.set_num_threads(kw.pop("threads"))
    dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=size)
    try:
        s = _step_seconds(distributed.world(), **kw)
        if rank == 0:
            torch.save(s, out)
    finally:
        dist.destroy_process_group()


def two_ranks(threads: int, **kw) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "s.pt")
        mp.spawn(_worker, args=(2, os.path.join(tmp, "init"), out, {**kw, "threads": threads}), nprocs=2, join=True)
        return torch.load(out)


def flops_per_tuple(width: float, frames: int) -> float:
    """Forward + backward FLOPs of the separator for one tuple (torch's FLOP counter)."""
    from torch.utils.flop_counter import FlopCounterMode

    net = models.Separator(width=width, dim=DIM)
    spec, targets = _batch(2, frames)
    with FlopCounterMode(display=False) as fc:
        loss = losses.separator_loss(net(spec), targets, "A2A")
        loss.backward()
    return fc.get_total_flops() / 2


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--width", type=float, default=0.25, help="separator width (the default tier: 0.25)")
    ap.add_argument("--frames", type=int, default=98, help="spectrogram frames (1 s clips: 98; the paper's 10 s: 1004)")
    ap.add_argument("--batch", type=int, default=16)
    a = ap.parse_args()
    cores = os.cpu_count() or 1
    kw = dict(batch=a.batch, frames=a.frames, width=a.width, steps=a.steps)

    torch.set_num_threads(cores)
    one = _step_seconds(distributed.World(), **kw)
    torch.set_num_threads(max(1, cores // 2))
    alone_half = _step_seconds(distributed.World(size=2), comm=False, **kw)  # one rank's share, no collectives
    two = two_ranks(max(1, cores // 2), **kw)
    comm = max(0.0, 1 - alone_half / two)
    print(f"CPU: {cores} cores; separator width {a.width}, {a.frames} frames, global batch {a.batch}")
    print("| ranks | threads/rank | step (ms) | tuples/s | communication share |")
    print("|---|---|---|---|---|")
    print(f"| 1 | {cores} | {one * 1000:.0f} | {a.batch / one:.1f} | — |")
    print(f"| 2 | {max(1, cores // 2)} | {two * 1000:.0f} | {a.batch / two:.1f} | {comm:.0%} |")

    # ---------------------------------------------------------------- the paper's run, estimated
    paper_flops = flops_per_tuple(1.0, 1004)
    n_params = sum(p.numel() for p in models.Separator(width=1.0, dim=DIM).parameters())
    cpu_flops = flops_per_tuple(a.width, a.frames) * a.batch / one  # achieved here, FLOP/s
    passes = 20_000 * 50 * 1.1  # 50 epochs of 20,000 tuples, + 10% for validation passes
    gpu = 312e12 * 0.30  # assumption: A100 bf16 peak 312 TFLOP/s at 30% utilisation (a small conv net, batch 16)
    bandwidth = 150e9  # assumption: NVLink all-reduce bus bandwidth within one node, bytes/s
    steps = passes / a.batch
    print(
        f"\npaper-size separator: {paper_flops / 1e9:.1f} GFLOP per tuple (forward + backward), {n_params / 1e6:.1f} M parameters"
    )
    print(
        f"this CPU achieves {cpu_flops / 1e9:.1f} GFLOP/s on the separator: the paper's run would take {passes * paper_flops / cpu_flops / 86400:.0f} days here"
    )
    print("| GPUs | per-GPU batch | compute (h) | gradient all-reduce (h) | total (h) | efficiency |")
    print("|---|---|---|---|---|---|")
    base = None
    for n in (1, 4, 8):
        compute = passes * paper_flops / (gpu * n) / 3600
        allreduce = 0.0 if n == 1 else steps * 2 * (n - 1) / n * n_params * 4 / bandwidth / 3600
        total = compute + allreduce  # no overlap assumed: an upper bound
        base = base or total
        print(f"| {n} | {a.batch / n:g} | {compute:.2f} | {allreduce:.2f} | {total:.2f} | {base / (n * total):.0%} |")
    print(
        "assumptions: 312 TFLOP/s bf16 peak at 30% utilisation per GPU, gradients (fp32) all-reduced in a "
        "ring at 150 GB/s within one node, no overlap of all-reduce and backward (DDP overlaps them: an upper "
        "bound), the global batch fixed at 16 (so more GPUs mean smaller per-GPU batches), data loading free "
        "(cached spectrograms)."
    )


if __name__ == "__main__":
    main()

"""Separator trainings side by side (issue 22, `train_jobs`): steps per second of the whole machine
for one process with 1 thread, one process with every core's thread, and N processes of 1 thread
each, on the default tier's separator (width 0.25, batch 16, 257 x 98 spectrograms, A2A loss).
Numbers for the notes (and the choice of `train_jobs` / `make book`'s lanes), not a test; run it
on an otherwise idle machine.

    .venv/bin/python benchmarks/side_by_side.py [--steps 30] [--jobs 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import torch

from avgas import losses, models


def steps_per_second(
    threads: int,
    steps: int,
    width: float = 0.25,
    batch: int = 16,
    frames: int = 98,
    channels_last: bool = False,
    bf16: bool = False,
) -> float:
    """Training steps per second of one process with `threads` torch threads (median step); with
    `channels_last`, the weights in that memory format, as avgas.train makes them; with `bf16`, the
    forward pass under bfloat16 autocast on the CPU (what `amp: true` does on a CPU with bfloat16)."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = models.Separator(width=width, dim=2048, sources=2).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 257, frames, generator=g)
    targets = {"A": tuple(torch.randn(batch, 2048, generator=g) for _ in range(2))}
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            hs = tuple(h.float() for h in model(x))
        loss = losses.separator_loss(hs, targets, "A2A")
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    times = sorted(times[3:])
    return 1.0 / times[len(times) // 2]


def _child(threads: int, steps: int) -> float:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(threads), "--steps", str(steps)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "OMP_NUM_THREADS": str(threads)},
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(steps_per_second(args.child, args.steps))
        return
    cores = os.cpu_count() or 1
    one = _child(1, args.steps)
    wide = _child(cores, args.steps)
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--child", "1", "--steps", str(args.steps)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        for _ in range(args.jobs)
    ]
    side = sum(float(p.communicate()[0].strip().splitlines()[-1]) for p in procs)
    print(f"separator training steps per second on this machine ({cores} cores), default-tier separator")
    print(f"  1 process, 1 thread:            {one:6.2f}")
    print(f"  1 process, {cores} threads:           {wide:6.2f}  ({wide / one:.2f}x)")
    print(f"  {args.jobs} processes, 1 thread each:   {side:6.2f}  ({side / one:.2f}x)")


if __name__ == "__main__":
    main()

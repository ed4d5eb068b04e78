"""One training step of the separator, its weights in the default memory format and channels-last
(issue 22: the separator trainings are the largest stage of `make book`). Median seconds per step
at the params file's width and batch, one torch thread; the two must also agree on the loss.
Numbers for the notes, not a test; run it on an otherwise idle machine.

    .venv/bin/python benchmarks/separator_step.py [params/default.yaml] [--steps 25]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from avgas import models, params
from avgas.core import losses


def step_seconds(p, channels_last: bool, steps: int) -> tuple[float, float]:
    """(median seconds of a forward, backward and Adam step; the first step's loss)."""
    torch.manual_seed(0)
    model = models.Separator(width=p.separator_width, dim=models.FEATURE_DIM, sources=p.sources).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=p.lr)
    g = torch.Generator().manual_seed(0)
    frames = int(round(p.clip_seconds * 98))
    x = torch.randn(p.batch_size, 257, frames, generator=g)
    unit = [torch.nn.functional.normalize(torch.randn(p.batch_size, models.FEATURE_DIM, generator=g), dim=1)]
    targets = {"A": tuple(unit * p.sources)}
    times, first = [], None
    for _ in range(steps):
        t0 = time.perf_counter()
        loss = losses.separator_loss(model(x), targets, "A2A")
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
        first = loss.item() if first is None else first
    return statistics.median(times[3:]), first


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("params", nargs="?", default="params/default.yaml")
    ap.add_argument("--steps", type=int, default=25)
    a = ap.parse_args()
    torch.set_num_threads(1)
    p = params.load(a.params)
    plain, loss_plain = step_seconds(p, False, a.steps)
    last, loss_last = step_seconds(p, True, a.steps)
    print(f"separator width {p.separator_width}, batch {p.batch_size}, one thread")
    print(f"  default format : {plain * 1e3:7.1f} ms/step   first loss {loss_plain:.6f}")
    print(f"  channels-last  : {last * 1e3:7.1f} ms/step   first loss {loss_last:.6f}")
    print(f"  speed-up {plain / last:.2f}x")


if __name__ == "__main__":
    main()

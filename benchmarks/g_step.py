"""Where a training step of the stand-in G goes (issue 22: G is about half of a default run).

One step of `standins.train_generator` is: G forward without grad (the fakes of D's step), D's
hinge step, G forward with grad, D on the fakes, G's backward, Adam, and the EMA copy. This
times each phase at the params file's G settings (median of `--steps` steps, one torch thread
unless `--threads`), counts G's forward FLOPs with torch.utils.flop_counter, and prints the
achieved GFLOP/s. If the convolutions already run near the core's rate, a faster G step needs
less work (fewer steps, a narrower G, no second forward), and each of those changes the
instrument: it is chosen on validation (avgas.selection), not here. Numbers for the notes, not a
test; run it on an otherwise idle machine.

    .venv/bin/python benchmarks/g_step.py [params/default.yaml] [--steps 8] [--channels 8,16]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from avgas import models, params, standins


def _phases(p, steps: int) -> dict:
    torch.manual_seed(0)
    G = models.Generator(standins.generator_config(p)).train()
    D = standins.Discriminator(p.g_resolution).train()
    G_ema = copy.deepcopy(G)
    opt_g = torch.optim.Adam(G.parameters(), lr=p.g_lr, betas=(0.0, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=p.g_lr * 2, betas=(0.0, 0.999))
    b = p.stand_in_batch
    real = torch.rand(b, 3, p.g_resolution, p.g_resolution) * 2 - 1
    h = F.normalize(torch.randn(b, models.FEATURE_DIM), dim=1)
    z = torch.randn(b, G.dim_z)
    times: dict[str, list] = {}

    def timed(name, fn):
        t0 = time.perf_counter()
        out = fn()
        times.setdefault(name, []).append(time.perf_counter() - t0)
        return out

    for _ in range(steps + 2):
        with torch.no_grad():
            fake = timed("G forward, no grad (D's fakes)", lambda: G(z, None, h))

        def d_step():
            loss = F.relu(1 - D(real, h)).mean() + F.relu(1 + D(fake, h)).mean()
            opt_d.zero_grad()
            loss.backward()
            opt_d.step()

        timed("D step (forward, backward, Adam)", d_step)
        out = timed("G forward, with grad", lambda: G(z, None, h))

        def g_backward():
            loss = -D(out, h).mean() + F.l1_loss(F.adaptive_avg_pool2d(out, 8), F.adaptive_avg_pool2d(real, 8))
            opt_g.zero_grad()
            loss.backward()

        timed("D on the fakes + G backward", g_backward)
        timed("G Adam", opt_g.step)

        def ema():
            with torch.no_grad():
                for v, ve in zip(G.state_dict().values(), G_ema.state_dict().values()):
                    ve.copy_(ve * 0.995 + v * 0.005 if v.is_floating_point() else v)

        timed("EMA copy", ema)
    return {k: statistics.median(v[2:]) for k, v in times.items()}


def g_forward_flops(p) -> int:
    G = models.Generator(standins.generator_config(p)).eval()
    b = p.stand_in_batch
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        G(torch.randn(b, G.dim_z), None, F.normalize(torch.randn(b, models.FEATURE_DIM), dim=1))
    return fc.get_total_flops()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("params", nargs="?", default="params/default.yaml")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--channels", default=None, help="g_channels to compare, e.g. 8,16 (default: the file's)")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    base = params.load(a.params)
    for ch in [int(c) for c in a.channels.split(",")] if a.channels else [base.g_channels]:
        p = base.replace(g_channels=ch)
        ph = _phases(p, a.steps)
        step = sum(ph.values())
        flops = g_forward_flops(p)
        print(
            f"\nG stand-in: resolution {p.g_resolution}, g_channels {ch}, batch {p.stand_in_batch}, {a.threads} thread(s)"
        )
        for k, v in ph.items():
            print(f"  {k:<36} {1000 * v:8.1f} ms  {100 * v / step:5.1f}%")
        fwd = ph["G forward, no grad (D's fakes)"]
        print(f"  {'one step':<36} {1000 * step:8.1f} ms; x g_steps {p.g_steps} = {step * p.g_steps / 60:.1f} min")
        print(f"  G forward: {flops / 1e9:.2f} GFLOP per batch, {flops / fwd / 1e9:.1f} GFLOP/s achieved")


if __name__ == "__main__":
    main()

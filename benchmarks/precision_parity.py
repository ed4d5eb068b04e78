"""Two finished runs that differ in how their separators were trained (e.g. `--sweep amp=true`,
bfloat16 on the CPU, against the float32 run beside it), side by side: each separator's best
validation loss and best epoch per seed, the float32 seeds' spread, and the claims' verdicts and
corrected intervals (issue 22: the evidence a change of precision must bring before `make book`
may adopt it). Reads the run folders only; numbers for the notes, not a test.

    .venv/bin/python benchmarks/precision_parity.py runs/default runs/default-amptrue
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch


def separators(run: Path) -> dict[str, dict[int, tuple[float, int]]]:
    """{method: {seed: (best validation loss, best epoch counted from 1)}} of a run's separators."""
    out: dict[str, dict[int, tuple[float, int]]] = {}
    for f in sorted(run.glob("checkpoints/separator_*/last.pt")):
        name = f.parent.name.removeprefix("separator_")
        method, _, seed = name.partition("-seed")
        ck = torch.load(f, weights_only=False, map_location="cpu")
        out.setdefault(method, {})[int(seed or 0)] = (float(ck["best_val"]), int(ck["best_epoch"]) + 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("reference", type=Path, help="the run as make book trains it")
    ap.add_argument("other", type=Path, help="the run trained the other way")
    a = ap.parse_args()
    ref, other = separators(a.reference), separators(a.other)
    print(f"best validation loss per seed: {a.reference.name} | {a.other.name}")
    for method in sorted(ref.keys() & other.keys()):
        seeds = sorted(ref[method].keys() & other[method].keys())
        r, o = [ref[method][s][0] for s in seeds], [other[method][s][0] for s in seeds]
        spread = max(r) - min(r)
        diff = statistics.mean(o) - statistics.mean(r)
        epochs = f"best epochs {[ref[method][s][1] for s in seeds]} | {[other[method][s][1] for s in seeds]}"
        print(
            f"  {method:10s} {' '.join(f'{x:.4f}' for x in r)} | {' '.join(f'{x:.4f}' for x in o)}"
            f"  mean diff {diff:+.4f}, reference seeds' spread {spread:.4f}"
            f" ({'inside' if abs(diff) <= spread else 'OUTSIDE'}); {epochs}"
        )
    claims = [json.loads((run / "results.json").read_text())["claims"] for run in (a.reference, a.other)]
    changed = 0
    print("claims: verdict and corrected interval")
    for x, y in zip(*claims):
        same = x["verdict"] == y["verdict"]
        changed += not same
        ci = [f"[{c['corrected ci'][0]:+.3f}, {c['corrected ci'][1]:+.3f}]" for c in (x, y)]
        print(f"  {'  ' if same else '≠ '}{x['claim']}: {x['verdict'][:40]} {ci[0]} | {y['verdict'][:40]} {ci[1]}")
    print(f"{changed} of {len(claims[0])} verdicts changed")


if __name__ == "__main__":
    main()

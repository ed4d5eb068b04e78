"""One training step of the separator, its weights in the default memory format and channels-last
(issue 22: the separator trainings are the largest stage of `make book`; avgas.train makes them
channels-last). Median milliseconds per step at the params file's width and batch, one torch
thread, by side_by_side.steps_per_second. Numbers for the notes, not a test; run it on an
otherwise idle machine.

    .venv/bin/python benchmarks/separator_step.py [params/default.yaml] [--steps 25]
"""

from __future__ import annotations

import argparse

from side_by_side import steps_per_second  # this folder is on sys.path when a benchmark runs

from avgas import params


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("params", nargs="?", default="params/default.yaml")
    ap.add_argument("--steps", type=int, default=25)
    a = ap.parse_args()
    p = params.load(a.params)
    frames = int(round(p.clip_seconds * 98))
    ms = {
        cl: 1e3 / steps_per_second(1, a.steps, p.separator_width, p.batch_size, frames, channels_last=cl)
        for cl in (False, True)
    }
    print(f"separator width {p.separator_width}, batch {p.batch_size}, one thread")
    print(f"  default format : {ms[False]:7.1f} ms/step")
    print(f"  channels-last  : {ms[True]:7.1f} ms/step")
    print(f"  speed-up {ms[False] / ms[True]:.2f}x")


if __name__ == "__main__":
    main()

"""One training step of the separator, its weights in the default memory format and channels-last
(issue 22: the separator trainings are the largest stage of `make book`; avgas.train makes them
channels-last), and channels-last under bfloat16 autocast (what `amp: true` trains with on a CPU
with bfloat16 instructions; make book keeps float32). Median milliseconds per step at the params
file's width and batch, one torch thread, by side_by_side.steps_per_second. Numbers for the notes,
not a test; run it on an otherwise idle machine.

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
        (cl, bf): 1e3 / steps_per_second(1, a.steps, p.separator_width, p.batch_size, frames, channels_last=cl, bf16=bf)
        for cl, bf in ((False, False), (True, False), (True, True))
    }
    print(f"separator width {p.separator_width}, batch {p.batch_size}, one thread")
    print(f"  default format          : {ms[False, False]:7.1f} ms/step")
    print(f"  channels-last (avgas)   : {ms[True, False]:7.1f} ms/step")
    print(f"  speed-up {ms[False, False] / ms[True, False]:.2f}x")
    # what `amp: true` does on a CPU with bfloat16 instructions: it trains another model, so make
    # book keeps float32 (book/running.md)
    print(f"  channels-last, bf16 CPU : {ms[True, True]:7.1f} ms/step ({ms[True, False] / ms[True, True]:.2f}x)")


if __name__ == "__main__":
    main()

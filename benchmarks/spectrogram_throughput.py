"""Spectrogram throughput (clips/s): the batched torch transform against the scipy reference,
and world generation time and size per tier. Numbers for the issue notes, not a test.

    .venv/bin/python benchmarks/spectrogram_throughput.py [--threads N]
"""

import argparse
import shutil
import tempfile
import time

import numpy as np
import torch

from avgas import params, world
from avgas import spectrogram as S


def best_of(fn, repeats=3):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--skip-world", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    print(f"torch {torch.__version__}, {args.threads} thread(s)")
    print(f"{'clip':>6} {'n':>5} {'scipy clips/s':>14} {'torch clips/s':>14} {'speed-up':>9}")
    for seconds, n in ((1.0, 256), (10.0, 64)):
        waves = rng.uniform(-1, 1, (n, S.n_samples(seconds))).astype(np.float32)
        t_ref = best_of(lambda: [S.spectrogram_reference(w.astype(np.float64)) for w in waves])
        tw = torch.from_numpy(waves)
        t_torch = best_of(lambda: S.batched(tw, batch=64))
        print(f"{seconds:5.0f}s {n:5d} {n / t_ref:14.0f} {n / t_torch:14.0f} {t_ref / t_torch:8.1f}x")

    if args.skip_world:
        return
    print("\nworld generation (fresh folder each):")
    for tier in ("quick", "default"):
        tmp = tempfile.mkdtemp()
        try:
            p = params.load(f"params/{tier}.yaml", {"run_root": tmp})
            info = world.generate(p, progress=False)
            print(f"  {tier:8s} {info.n_clips:5d} clips  {info.seconds:6.1f} s  {info.megabytes:6.1f} MB")
        finally:
            shutil.rmtree(tmp)


if __name__ == "__main__":
    main()

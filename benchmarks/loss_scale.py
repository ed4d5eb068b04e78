"""The loss scale, measured once on validation (issue 24). Numbers for the issue notes, not a test.

`losses.separator_loss` sums the two directions and the two halves; the paper's Eq. 2-3 average
them (1/(2B)), so the paper's scale with the halves averaged is a quarter of ours. Adam ignores a
loss's scale but not its coupled weight decay, so the two scales train differently. This trains
each alignment of a finished run both ways on the run's own train and validation tuples (same
seeds, same data, same epochs) and prints the best validation loss (on avgas's scale) and the
validation retrieval of the best epoch: for each half, is its own source's target the nearest
among all validation tuples' targets (R@1, f_A and f_V targets, averaged over the halves)?

A third row trains avgas's loss with weight decay x4, which takes the same steps as the paper's
scale up to Adam's eps and float rounding: how far it lands from the paper-scale row says how much
of a difference training's own sensitivity makes.

    .venv/bin/python benchmarks/loss_scale.py runs/quick [--epochs 2] [--seeds 2]

The run folder is read, never written: what training needs is copied to a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

from avgas import checkpoints, data, losses, params, separators, train
from avgas.core import separator

VARIANTS = {"avgas": (1.0, 1), "paper scale (1/4)": (0.25, 1), "avgas, weight decay x4": (1.0, 4)}


def r_at_1(h: torch.Tensor, t: torch.Tensor) -> float:
    sim = F.normalize(h, dim=1) @ F.normalize(t, dim=1).T
    return (sim.argmax(1) == torch.arange(len(h))).float().mean().item()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path, help="a finished run folder (notebooks 01-03 done)")
    ap.add_argument("--epochs", type=int, default=None, help="default: the run's")
    ap.add_argument("--seeds", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="avgas-loss-scale-"))
    keep = ("data", "cache", "checkpoints", "params.yaml", "tuples.csv", "protocol.json")
    skip = shutil.ignore_patterns("separator_*", ".avgas.lock")
    for name in keep:
        src = args.run / name
        if src.is_dir():
            shutil.copytree(src, tmp / "run" / name, ignore=skip)
        elif src.is_file():
            (tmp / "run").mkdir(exist_ok=True)
            shutil.copy2(src, tmp / "run" / name)
    p0 = params.load(tmp / "run" / "params.yaml", {"run_root": str(tmp), "name": "run", "threads": 1})
    epochs = args.epochs or p0.epochs
    cat = data.catalogue(p0)
    tuples = data.make_tuples(cat, p0)
    fa, fv, _ = checkpoints.load_parts(p0)
    tr = train.separator_data(p0, cat, tuples, "train", fa, fv, progress=False)
    va = train.separator_data(p0, cat, tuples, "val", fa, fv, progress=False)
    real = losses.separator_loss
    rows = []
    try:
        for alignment in ("A2A", "A2V", "A2A+A2V"):
            for variant, (scale, decay) in VARIANTS.items():
                if decay != 1 and alignment != "A2A":
                    continue
                for replica in range(args.seeds):
                    losses.separator_loss = lambda *a, s=scale, **k: real(*a, **k) * s
                    p = p0.replace(
                        name=f"scale{scale}-decay{decay}", epochs=epochs, weight_decay=p0.weight_decay * decay
                    )
                    res = train.train_separator(p, alignment, tr, va, progress=False, replica=replica)
                    losses.separator_loss = real
                    hs = separator.separate(separators.load_separator(p, alignment, "best", replica), va.mix)
                    r1 = {k: sum(r_at_1(h, t) for h, t in zip(hs, va.targets[k])) / len(hs) for k in ("A", "V")}
                    row = {
                        "alignment": alignment,
                        "variant": variant,
                        "seed": p0.seed + replica,
                        "epochs": epochs,
                        "best_epoch": res.best_epoch,
                        "best_val_loss": res.best_val / scale,  # on avgas's scale
                        "val_R@1_fA": r1["A"],
                        "val_R@1_fV": r1["V"],
                    }
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    finally:
        losses.separator_loss = real
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n{len(va.mix)} validation tuples, {len(tr.mix)} train tuples, {epochs} epochs; mean over seeds:")
    print(f"{'alignment':9s} {'variant':24s} {'best val loss':>13s} {'R@1 f_A':>8s} {'R@1 f_V':>8s}")
    for alignment in ("A2A", "A2V", "A2A+A2V"):
        for variant in VARIANTS:
            sel = [r for r in rows if r["alignment"] == alignment and r["variant"] == variant]
            if sel:
                mean = {k: sum(r[k] for r in sel) / len(sel) for k in ("best_val_loss", "val_R@1_fA", "val_R@1_fV")}
                print(
                    f"{alignment:9s} {variant:24s} {mean['best_val_loss']:13.3f} "
                    f"{mean['val_R@1_fA']:8.3f} {mean['val_R@1_fV']:8.3f}"
                )


if __name__ == "__main__":
    main()

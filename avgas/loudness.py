"""Relative loudness: the paper's failure case (Supplementary C), measured.

The paper notes that a quiet source can vanish from the generated image. Here the held-out test
tuples are mixed again with the foreground at several levels relative to the background (the
same clips, the same noise z), and the mixed images of Sound2Scene, AV-GAS A2A and the control are
scored with the run's detector (CRS) and CLIP (R@2*) at each level.
"""
from __future__ import annotations

import pandas as pd
import torch

from avgas import data, generate, judges, losses, metrics, train
from avgas import spectrogram as spec
from avgas.params import Params

LEVELS_DB = (-20.0, -10.0, 0.0, 10.0, 20.0)


def mixes_at(p: Params, cat: pd.DataFrame, tuples: pd.DataFrame, level_db: float) -> torch.Tensor:
    """Spectrograms of the tuples' mixtures with the foreground at `level_db` (not cached: the
    sweep's levels are not the run's)."""
    fg = data.load_waves(cat, tuples["fg_stem"], p.clip_seconds)
    bg = data.load_waves(cat, tuples["bg_stem"], p.clip_seconds)
    return spec.batched(data.mix(fg, bg, level_db), p.spectrogram_batch)


def sweep(p: Params, cat: pd.DataFrame, tuples: pd.DataFrame, fa, G, detector: tuple, clip: tuple,
          levels=LEVELS_DB) -> pd.DataFrame:
    """Long table: level, method, CRS, R@2* (means over the tuples) and the per-tuple successes.
    detector: (model, confidence threshold); clip: (model, tokenizer)."""
    det, conf = detector
    clip_model, tok = clip
    words, wanted = judges.vocabulary(p), judges.wanted(tuples)["mixed"]
    res, view = G.resolution, clip_model.visual.image_size[0]
    models = {"A2A": ("A2A", 0)} if "A2A" in p.alignments else {}
    if p.control:
        models[train.CONTROL_NAME] = (losses.CONTROL, 0)
    rows = []
    for level in levels:
        mix = mixes_at(p, cat, tuples, level)
        feats = {"Sound2Scene": train.embed_mix(fa, mix)}
        for name, (kind, replica) in models.items():
            h_fg, h_bg = train.separate(train.load_separator(p, kind, replica=replica), mix)
            feats[name] = h_fg if kind == losses.CONTROL else generate.blend(h_fg, h_bg, p.mix_lambda)
        images = generate.images_for(G, {("mixed", m): h for m, h in feats.items()}, p.seed)
        for (_, method), imgs in images.items():
            found = judges.detect(det, judges.judge_view(imgs, res, p.detector_imgsz), words, conf,
                                  p.detector_imgsz, device=judges.ultralytics_device(p))
            crs = [w <= f for w, f in zip(wanted, found)]
            sim = judges.clip_similarity(clip_model, tok, judges.judge_view(imgs, res, view), words)
            r2 = judges.recall_at_k(sim, words, wanted, 2)
            rows.append({"level_db": level, "method": method, "CRS": metrics.crs(found, wanted),
                         "R@2*": float(r2.mean()), "per_tuple_CRS": [bool(x) for x in crs],
                         "per_tuple_R@2*": [bool(x) for x in r2]})
    return pd.DataFrame(rows)


def plot(table: pd.DataFrame):
    """CRS and R@2* against the foreground's level, one line per method."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
    for ax, metric in zip(axes, ("CRS", "R@2*")):
        for method, g in table.groupby("method", sort=False):
            ax.plot(g["level_db"], g[metric], marker="o", label=method)
        ax.set(title=f"mixed images: {metric}", xlabel="foreground level relative to background (dB)",
               ylim=(-0.02, 1.02))
        ax.axvline(0, color="grey", lw=0.6, ls=":")
    axes[0].set_ylabel("share of test mixtures")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def save(p: Params, table: pd.DataFrame, fig) -> None:
    """metrics_loudness.json (means per level and method; per-tuple successes kept apart) and
    figures/loudness.png for the book's results page."""
    import json

    from avgas import paths
    levels = table[["level_db", "method", "CRS", "R@2*"]].to_dict(orient="records")
    per_tuple = table.drop(columns=["CRS", "R@2*"]).to_dict(orient="records")
    paths.atomic_write_text(p.run_dir / "metrics_loudness.json",
                            json.dumps({"levels": levels, "per_tuple": per_tuple}, indent=1))
    (p.run_dir / "figures").mkdir(parents=True, exist_ok=True)
    fig.savefig(p.run_dir / "figures" / "loudness.png", dpi=120, bbox_inches="tight")

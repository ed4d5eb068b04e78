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


def _equal_rms(x, rms: float = 0.1):
    """Each clip at the same RMS (-20 dBFS), so that a level is relative to the other source."""
    import numpy as np

    return x * (rms / np.maximum(np.sqrt(np.mean(np.square(x), axis=-1, keepdims=True)), 1e-8))


def mixes_at(p: Params, cat: pd.DataFrame, tuples: pd.DataFrame, level_db: float) -> torch.Tensor:
    """Spectrograms of the tuples' mixtures with the foreground `level_db` louder than the
    background: both clips are first brought to the same RMS (the world's clips have a natural
    level spread), then mixed (not cached: the sweep's levels are not the run's)."""
    fg = _equal_rms(data.load_waves(cat, tuples["fg_stem"], p.clip_seconds))
    bg = _equal_rms(data.load_waves(cat, tuples["bg_stem"], p.clip_seconds))
    return spec.batched(data.mix(fg, bg, level_db), p.spectrogram_batch)


def sweep(
    p: Params, cat: pd.DataFrame, tuples: pd.DataFrame, fa, G, crs_judge, recall_judge, levels=LEVELS_DB
) -> pd.DataFrame:
    """Long table: level, method, seed, CRS, R@2* (means over the tuples) and the per-tuple
    successes, judged by the run's detector and CLIP (judges.crs_judge, judges.recall_judge)."""
    wanted = judges.wanted(tuples)["mixed"]
    models = {
        train.method_name(kind, r): (kind, r) for kind, r in train.trained_models(p) if kind in ("A2A", losses.CONTROL)
    }  # every seed
    rows = []
    for level in levels:
        mix = mixes_at(p, cat, tuples, level)
        feats = {"Sound2Scene": train.embed_mix(fa, mix)}
        for name, (kind, replica) in models.items():
            h_fg, h_bg = train.separate(train.load_separator(p, kind, replica=replica), mix)
            feats[name] = h_fg if kind == losses.CONTROL else generate.blend(h_fg, h_bg, p.mix_lambda)
        images = generate.images_for(G, {("mixed", m): h for m, h in feats.items()}, p.seed)
        for (_, name), imgs in images.items():
            method, _, seed = name.partition("#")
            crs, r2 = crs_judge.hits(imgs, wanted), recall_judge.hits(imgs, wanted)
            rows.append(
                {
                    "level_db": level,
                    "method": method,
                    "seed": int(seed or 0),
                    "CRS": float(crs.mean()),
                    "R@2*": float(r2.mean()),
                    "per_tuple_CRS": [bool(x) for x in crs],
                    "per_tuple_R@2*": [bool(x) for x in r2],
                }
            )
    return pd.DataFrame(rows)


def plot(table: pd.DataFrame):
    """CRS and R@2* against the foreground's level, one line per method."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
    table = table.groupby(["method", "level_db"], sort=False)[["CRS", "R@2*"]].mean().reset_index()
    for ax, metric in zip(axes, ("CRS", "R@2*")):
        for method, g in table.groupby("method", sort=False):
            ax.plot(g["level_db"], g[metric], marker="o", label=method)
        ax.set(
            title=f"mixed images: {metric}", xlabel="foreground level relative to background (dB)", ylim=(-0.02, 1.02)
        )
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

    levels = (
        table.groupby(["level_db", "method"], sort=False)[["CRS", "R@2*"]]
        .mean()
        .reset_index()
        .to_dict(orient="records")
    )
    per_tuple = table.drop(columns=["CRS", "R@2*"]).to_dict(orient="records")
    paths.atomic_write_text(
        p.run_dir / "metrics_loudness.json",
        json.dumps({"levels": levels, "paired": paired(table), "per_tuple": per_tuple}, indent=1),
    )
    (p.run_dir / "figures").mkdir(parents=True, exist_ok=True)
    fig.savefig(p.run_dir / "figures" / "loudness.png", dpi=120, bbox_inches="tight")


def paired(table: pd.DataFrame) -> dict:
    """Paired intervals over the test tuples (seeds pooled): at each level, A2A - Sound2Scene and
    the control - Sound2Scene; and the paper's failure case, A2A at 0 dB - A2A at each level (above
    0: A2A's images lose a class when that source is quieter)."""

    def successes(method, level, metric):
        rows = table[(table["method"] == method) & (table["level_db"] == level)]
        return [r[f"per_tuple_{metric}"] for _, r in rows.sort_values("seed").iterrows()]

    out = {}
    for metric in ("CRS", "R@2*"):
        for level in sorted(table["level_db"].unique()):
            base = successes("Sound2Scene", level, metric)
            for m in [m for m in table["method"].unique() if m != "Sound2Scene"]:
                out.setdefault(f"{m} - Sound2Scene", {}).setdefault(metric, {})[f"{level:+.0f} dB"] = metrics.paired_ci(
                    successes(m, level, metric), base[0]
                )
            if level != 0 and (table["method"] == "A2A").any():
                out.setdefault("A2A at 0 dB - A2A at this level", {}).setdefault(metric, {})[f"{level:+.0f} dB"] = (
                    metrics.paired_ci(successes("A2A", 0.0, metric), successes("A2A", level, metric))
                )
    return out

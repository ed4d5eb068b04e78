"""Relative loudness: the paper's failure case (Supplementary C), measured source by source.

The paper notes that a quiet source can vanish from the generated image. Here the held-out test
tuples are mixed again with the foreground at several levels relative to the background (both clips
first brought to the same RMS; the same clips, the same noise z), and, as its own point, the
natural-level mix that Table 1 scores (the clips as they are, added); the mixed images of
Sound2Scene, AV-GAS A2A and the two controls are scored with the run's detector and CLIP. Beside
CRS (both classes found) and R@2*, the detector says *which* source is found: the rate at which the
foreground is found and the rate at which the background is found, per level — so a plot shows
which source vanishes as it gets quieter.
"""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from avgas import data, judges, metrics, paths, separators
from avgas import spectrogram as spec
from avgas.core import generation, losses, scores, separator
from avgas.params import Params
from avgas.runfolder import RunFolder

LEVELS_DB = (-20.0, -10.0, 0.0, 10.0, 20.0)
NATURAL = "natural (Table 1)"  # the run's own test mixtures: the clips' natural levels, added
SWEPT = ("A2A", *losses.CONTROLS)  # the trained models the sweep scores beside Sound2Scene (every seed)


def _equal_rms(x, rms: float = 0.1):
    """Each clip at the same RMS (-20 dBFS), so that a level is relative to the other source."""
    return x * (rms / np.maximum(np.sqrt(np.mean(np.square(x), axis=-1, keepdims=True)), 1e-8))


def _rms_db(x) -> np.ndarray:
    return 20 * np.log10(np.maximum(np.sqrt(np.mean(np.square(x), axis=-1)), 1e-8))


def mixes_at(p: Params, cat: pd.DataFrame, tuples: pd.DataFrame, level_db: float) -> torch.Tensor:
    """Spectrograms of the tuples' mixtures with the foreground `level_db` louder than the
    background: both clips are first brought to the same RMS (the world's clips have a natural
    level spread), then mixed (not cached: the sweep's levels are not the run's)."""
    fg = _equal_rms(data.load_waves(cat, tuples["fg_stem"], p.clip_seconds))
    bg = _equal_rms(data.load_waves(cat, tuples["bg_stem"], p.clip_seconds))
    return spec.batched(data.mix(fg, bg, level_db), p.spectrogram_batch)


def natural_mixes(p: Params, cat: pd.DataFrame, tuples: pd.DataFrame) -> tuple[torch.Tensor, float]:
    """The test mixtures exactly as Table 1 scores them (the run's cached spectrograms: the clips at
    their natural levels, added at `relative_level_db`), and the median level of the foreground
    relative to the background in them (dB), where the plot puts this point."""
    fg = data.load_waves(cat, tuples["fg_stem"], p.clip_seconds)
    bg = data.load_waves(cat, tuples["bg_stem"], p.clip_seconds)
    level = float(np.median(_rms_db(fg) - _rms_db(bg))) + p.relative_level_db
    return data.mix_spectrograms(p, cat, tuples, "test", progress=False), level


def sweep(
    p: Params, cat: pd.DataFrame, tuples: pd.DataFrame, fa, G, crs_judge, recall_judge, levels=LEVELS_DB
) -> pd.DataFrame:
    """Long table: level (its label; level_db, NaN for the natural mix, whose median level is in
    natural_level_db), method, seed, CRS, R@2*, the rates at which the foreground and the background
    are found (the detector, per class), and the per-tuple successes, judged by the run's detector
    and CLIP (judges.detector.judge, judges.clip.judge)."""
    want = judges.wanted(tuples)
    wanted, fg_word, bg_word = want["mixed"], want["separated_foreground"], want["separated_background"]
    models = {
        separators.method_name(kind, r): (kind, r) for kind, r in separators.trained_models(p) if kind in SWEPT
    }  # every seed
    natural, natural_db = natural_mixes(p, cat, tuples)
    rows = []
    for level in [*levels, NATURAL]:
        mix = natural if level == NATURAL else mixes_at(p, cat, tuples, level)
        feats = {"Sound2Scene": separator.embed_mix(fa, mix)}
        for name, (kind, replica) in models.items():
            h_fg, h_bg = separator.separate(separators.load_separator(p, kind, replica=replica), mix)
            feats[name] = h_fg if kind in losses.CONTROLS else generation.blend(h_fg, h_bg, p.mix_lambda)
        images = generation.images_for(G, {("mixed", m): h for m, h in feats.items()}, p.seed)
        for (_, name), imgs in images.items():
            method, _, seed = name.partition("#")
            found = crs_judge.words(imgs)  # the words the detector finds, once per image
            crs = scores.represented(found, wanted)
            fg = scores.represented(found, fg_word)
            bg = scores.represented(found, bg_word)
            r2 = recall_judge.hits(imgs, wanted)
            rows.append(
                {
                    "level": level if level == NATURAL else f"{level:+.0f} dB",
                    "level_db": float("nan") if level == NATURAL else level,
                    "natural_level_db": natural_db if level == NATURAL else float("nan"),
                    "method": method,
                    "seed": int(seed or 0),
                    "CRS": float(crs.mean()),
                    "R@2*": float(r2.mean()),
                    "foreground found": float(fg.mean()),
                    "background found": float(bg.mean()),
                    "per_tuple_CRS": [bool(x) for x in crs],
                    "per_tuple_R@2*": [bool(x) for x in r2],
                    "per_tuple_foreground": [bool(x) for x in fg],
                    "per_tuple_background": [bool(x) for x in bg],
                }
            )
    return pd.DataFrame(rows)


PRESENCE = ("foreground found", "background found")
RATES = ("CRS", "R@2*", *PRESENCE)


def presence(table: pd.DataFrame) -> pd.DataFrame:
    """Per method and level (the natural mix last): the rates at which the foreground and the
    background are found, and CRS, mean over seeds."""
    order = {
        **{m: i for i, m in enumerate(dict.fromkeys(table["method"]))},
        **{lv: i for i, lv in enumerate(dict.fromkeys(table["level"]))},
    }
    out = table.groupby(["method", "level"], sort=False)[["foreground found", "background found", "CRS"]].mean()
    return out.sort_index(key=lambda s: s.map(order)).round(3)


def plot_presence(table: pd.DataFrame):
    """Which source vanishes as it gets quieter: per method, the rate at which the detector finds
    the foreground (solid) and the background (dashed) against the foreground's level; the natural
    mix of Table 1 as its own markers (diamonds) at its median level."""
    methods = list(dict.fromkeys(table["method"]))
    fig, axes = plt.subplots(1, len(methods), figsize=(3.0 * len(methods), 3.2), sharey=True, squeeze=False)
    swept = table[table["level"] != NATURAL]
    nat = table[table["level"] == NATURAL]
    for ax, method in zip(axes[0], methods):
        g = swept[swept["method"] == method].groupby("level_db")[list(PRESENCE)].mean()
        n = nat[nat["method"] == method]
        for col, style, colour in zip(PRESENCE, ("-", "--"), ("tab:orange", "tab:blue")):
            ax.plot(g.index, g[col], style, marker="o", color=colour, label=col)
            if len(n):
                ax.plot(n["natural_level_db"].mean(), n[col].mean(), "D", color=colour, mfc="none", ms=8)
        short = {
            separators.CONTROL_NAME: "A2A's control (f_A blend)",
            separators.CONTROL_V_NAME: "A2V's control (f_V blend)",
        }
        ax.set(title=short.get(method, method), xlabel="foreground level − background (dB)")
        ax.set_ylim(-0.02, 1.02)
        ax.axvline(0, color="grey", lw=0.6, ls=":")
    axes[0][0].set_ylabel("share of test mixtures: source found")
    axes[0][0].plot([], [], "D", color="grey", mfc="none", label=NATURAL)
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle("mixed images: which source the detector finds, as the foreground gets quieter", fontsize=9)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def plot(table: pd.DataFrame):
    """CRS and R@2* against the foreground's level, one line per method."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
    table = table[table["level"] != NATURAL] if "level" in table else table
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


def _json_safe(records: list[dict]) -> list[dict]:
    """NaN (the natural mix has no swept level; the swept ones no natural level) as null."""
    return [{k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in r.items()} for r in records]


def save(p: Params, table: pd.DataFrame, fig, presence_fig=None) -> None:
    """metrics_loudness.json (means per level and method: CRS, R@2*, foreground and background
    found; per-tuple successes kept apart) and figures/loudness.png (and loudness_presence.png)
    for the book's results page."""
    rates = [c for c in RATES if c in table]
    keys = ["level", "level_db", "natural_level_db", "method"] if "level" in table else ["level_db", "method"]
    levels = table.groupby(keys, sort=False, dropna=False)[rates].mean().reset_index().to_dict(orient="records")
    per_tuple = table.drop(columns=rates).to_dict(orient="records")
    folder = RunFolder.of(p)
    paths.atomic_write_text(
        folder.metrics("loudness"),
        json.dumps(
            {"levels": _json_safe(levels), "paired": paired(table), "per_tuple": _json_safe(per_tuple)}, indent=1
        ),
    )
    folder.figures.mkdir(parents=True, exist_ok=True)
    fig.savefig(folder.figure("loudness.png"), dpi=120, bbox_inches="tight")
    if presence_fig is not None:
        presence_fig.savefig(folder.figure("loudness_presence.png"), dpi=120, bbox_inches="tight")


def paired(table: pd.DataFrame) -> dict:
    """Paired intervals over the test tuples (seeds pooled): at each level (the natural mix
    included), each swept model - Sound2Scene; and the paper's failure case, A2A at 0 dB - A2A at
    each level (above 0: A2A's images lose a class, or the foreground, when that source is
    quieter). Metrics: CRS, R@2*, and the foreground / background found by the detector."""
    if "level" not in table:  # a table of the swept levels only (tables written before the natural point)
        table = table.assign(level=[f"{x:+.0f} dB" for x in table["level_db"]])
    zero = f"{0.0:+.0f} dB"

    def successes(method, level, metric):
        rows = table[(table["method"] == method) & (table["level"] == level)]
        return [r[f"per_tuple_{metric}"] for _, r in rows.sort_values("seed").iterrows()]

    out = {}
    metrics_ = [m for m in ("CRS", "R@2*", "foreground", "background") if f"per_tuple_{m}" in table]
    for metric in metrics_:
        for level in dict.fromkeys(table["level"]):
            base = successes("Sound2Scene", level, metric)
            for m in [m for m in table["method"].unique() if m != "Sound2Scene"]:
                out.setdefault(f"{m} - Sound2Scene", {}).setdefault(metric, {})[level] = metrics.paired_ci(
                    successes(m, level, metric), base[0]
                )
            if level != zero and (table["method"] == "A2A").any() and (table["level"] == zero).any():
                out.setdefault("A2A at 0 dB - A2A at this level", {}).setdefault(metric, {})[level] = metrics.paired_ci(
                    successes("A2A", zero, metric), successes("A2A", level, metric)
                )
    return out

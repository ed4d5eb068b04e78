"""What the notebooks show: figures, audio players and tables built from the module's outputs."""
from __future__ import annotations

import html

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import HTML, Audio

from avgas import data, paper
from avgas import spectrogram as spec
from avgas.params import Params


def _first_per_class(cat: pd.DataFrame, p: Params, split: str = "train") -> pd.DataFrame:
    from avgas import world
    sub = cat[cat["split"] == split].groupby("label").head(1).set_index("label")
    return sub.reindex(world.classes(p))


def audio_html(wave: np.ndarray) -> str:
    """An <audio> element (data URL) for a 16 kHz clip, as IPython renders it."""
    return Audio(wave, rate=spec.SR)._repr_html_()


def class_players(cat: pd.DataFrame, p: Params) -> HTML:
    """One audio player per class: a table of class, role, prompt and the clip."""
    first = _first_per_class(cat, p)
    bgs = {bg for _, bg in p.combination_list()}
    rows = []
    for label, row in first.iterrows():
        wave = spec.load_wave(row["audio"], p.clip_seconds)
        role = "background" if label in bgs else "foreground"
        rows.append(f"<tr><td>{html.escape(label)}</td><td>{role}</td>"
                    f"<td>{html.escape(paper.prompts().get(label, ''))}</td><td>{audio_html(wave)}</td></tr>")
    return HTML("<table><tr><th>class</th><th>role</th><th>prompt</th><th>listen</th></tr>"
                + "".join(rows) + "</table>")


def _show_spec(ax, s: torch.Tensor | np.ndarray, title: str = ""):
    ax.imshow(np.asarray(s), origin="lower", aspect="auto", cmap="magma",
              extent=[0, s.shape[-1] * spec.HOP / spec.SR, 0, spec.SR / 2000])
    ax.set_title(title, fontsize=8)
    ax.tick_params(labelsize=6)


def class_gallery(cat: pd.DataFrame, p: Params, columns: int = 4):
    """Every class: its image above its spectrogram (one training clip each)."""
    first = _first_per_class(cat, p)
    n = len(first)
    rows = int(np.ceil(n / columns))
    fig, axes = plt.subplots(2 * rows, columns, figsize=(3 * columns, 4.2 * rows),
                             gridspec_kw={"height_ratios": [1.4, 1] * rows})
    for ax in axes.ravel():
        ax.axis("off")
    for k, (label, row) in enumerate(first.iterrows()):
        r, c = divmod(k, columns)
        axes[2 * r, c].imshow(data.load_image(row["image"]))
        axes[2 * r, c].set_title(f"{label}\n[{paper.prompts().get(label, '')}]", fontsize=8)
        s = spec.spectrogram(torch.from_numpy(spec.load_wave(row["audio"], p.clip_seconds)))
        axes[2 * r + 1, c].axis("on")
        _show_spec(axes[2 * r + 1, c], s)
    fig.suptitle("Every class: its image and its spectrogram (kHz against s)", y=1.0)
    fig.tight_layout()
    return fig


def image_variety(cat: pd.DataFrame, label: str, n: int = 8):
    """Several clips of one class: how much images vary from clip to clip."""
    rows = cat[cat["label"] == label].head(n)
    fig, axes = plt.subplots(1, len(rows), figsize=(1.6 * len(rows), 1.9))
    for ax, (_, row) in zip(np.atleast_1d(axes), rows.iterrows()):
        ax.imshow(data.load_image(row["image"]))
        ax.axis("off")
    fig.suptitle(f"{len(rows)} clips of '{label}'", fontsize=9)
    return fig


def tuple_view(cat: pd.DataFrame, tup: pd.Series, p: Params):
    """A training tuple as in the paper's Figure 2: the mix, the two sources and two images.
    Returns the figure and an HTML row of audio players (mix, foreground, background)."""
    by = cat.set_index("stem")
    fg_w = spec.load_wave(by.loc[tup["fg_stem"], "audio"], p.clip_seconds)
    bg_w = spec.load_wave(by.loc[tup["bg_stem"], "audio"], p.clip_seconds)
    mix_w = data.mix(fg_w, bg_w, p.relative_level_db)
    fig, axes = plt.subplots(1, 5, figsize=(16, 3.2))
    for ax, w, t in zip(axes[:3], (mix_w, fg_w, bg_w),
                        ("mixed audio", f"audio 1: {tup['fg_label']}", f"audio 2: {tup['bg_label']}")):
        _show_spec(ax, spec.spectrogram(torch.from_numpy(w)), t)
    for ax, stem, t in zip(axes[3:], (tup["fg_stem"], tup["bg_stem"]), ("image 1", "image 2")):
        ax.imshow(data.load_image(by.loc[stem, "image"]))
        ax.set_title(t, fontsize=8)
        ax.axis("off")
    fig.suptitle(f"Training tuple {tup['tuple_id']}: {tup['combination']}")
    fig.tight_layout()
    players = HTML("<table><tr><th>mixed</th><th>audio 1 (foreground)</th><th>audio 2 (background)</th></tr>"
                   f"<tr><td>{audio_html(mix_w)}</td><td>{audio_html(fg_w)}</td><td>{audio_html(bg_w)}</td></tr></table>")
    return fig, players

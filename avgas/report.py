"""What the notebooks show: figures, audio players and tables built from the module's outputs."""

from __future__ import annotations

import html
import inspect
import textwrap

import IPython.display
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import HTML, Audio, Markdown

from avgas import data, paper, slots, world
from avgas import spectrogram as spec
from avgas.core import generation
from avgas.params import Params


def _first_per_class(cat: pd.DataFrame, p: Params, split: str = "train") -> pd.DataFrame:
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
        rows.append(
            f"<tr><td>{html.escape(label)}</td><td>{role}</td>"
            f"<td>{html.escape(paper.prompts().get(label, ''))}</td><td>{audio_html(wave)}</td></tr>"
        )
    return HTML(
        "<table><tr><th>class</th><th>role</th><th>prompt</th><th>listen</th></tr>" + "".join(rows) + "</table>"
    )


def _show_spec(ax, s: torch.Tensor | np.ndarray, title: str = ""):
    ax.imshow(
        np.asarray(s),
        origin="lower",
        aspect="auto",
        cmap="magma",
        extent=[0, s.shape[-1] * spec.HOP / spec.SR, 0, spec.SR / 2000],
    )
    ax.set_title(title, fontsize=8)
    ax.tick_params(labelsize=6)


def class_gallery(cat: pd.DataFrame, p: Params, columns: int = 4):
    """Every class: its image above its spectrogram (one training clip each)."""
    first = _first_per_class(cat, p)
    n = len(first)
    rows = int(np.ceil(n / columns))
    fig, axes = plt.subplots(
        2 * rows, columns, figsize=(3 * columns, 4.2 * rows), gridspec_kw={"height_ratios": [1.4, 1] * rows}
    )
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
    """A training tuple as in the paper's Figure 2: the mix, the sources and their images (two of
    each in the paper, K with `sources`). Returns the figure and an HTML row of audio players."""
    by = cat.set_index("stem")
    prefixes = slots.prefixes(sum(c.endswith("_stem") for c in tup.index))
    waves = [spec.load_wave(by.loc[tup[f"{x}_stem"], "audio"], p.clip_seconds) for x in prefixes]
    mix_w = data.mix(waves[0], waves[-1], p.relative_level_db, waves[1:-1])
    k = len(prefixes)
    fig, axes = plt.subplots(1, 1 + 2 * k, figsize=(3.2 * (1 + 2 * k), 3.2))
    titles = ["mixed audio"] + [f"audio {n}: {tup[f'{x}_label']}" for n, x in enumerate(prefixes, 1)]
    for ax, w, t in zip(axes[: k + 1], [mix_w, *waves], titles):
        _show_spec(ax, spec.spectrogram(torch.from_numpy(w)), t)
    for n, (ax, x) in enumerate(zip(axes[k + 1 :], prefixes), 1):
        ax.imshow(data.load_image(by.loc[tup[f"{x}_stem"], "image"]))
        ax.set_title(f"image {n}", fontsize=8)
        ax.axis("off")
    fig.suptitle(f"Training tuple {tup['tuple_id']}: {tup['combination']}")
    fig.tight_layout()
    roles = ["mixed"] + [
        f"audio {n} ({'background' if x == 'bg' else 'foreground'})" for n, x in enumerate(prefixes, 1)
    ]
    players = HTML(
        "<table><tr>"
        + "".join(f"<th>{r}</th>" for r in roles)
        + "</tr><tr>"
        + "".join(f"<td>{audio_html(w)}</td>" for w in [mix_w, *waves])
        + "</tr></table>"
    )
    return fig, players


# ------------------------------------------------------------------------- pretrained parts (02)


def image_grid(
    rows: list, row_titles: list[str], col_titles: list[str] | None = None, title: str = "", cell: float = 1.1
):
    """rows: list of (n, H, W, 3) uint8 arrays (one row each, same n)."""
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(cell * n_cols + 1.8, cell * n_rows + 0.5), squeeze=False)
    for r, (imgs, name) in enumerate(zip(rows, row_titles)):
        for c in range(n_cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for s in ax.spines.values():
                s.set_visible(False)
            if c < len(imgs):
                ax.imshow(np.asarray(imgs[c]))
            if c == 0:
                ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=7)
            if r == 0 and col_titles:
                ax.set_title(col_titles[c], fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def stand_in_table(rep: dict) -> pd.DataFrame:
    """Sizes and training times of the synthetic stand-ins (or the file used, when given)."""
    rows = {
        k: {
            "parameters (M)": v.get("params_M", ""),
            "training seconds": v.get("seconds", ""),
            "source": v.get("given", "stand-in trained here"),
        }
        for k, v in rep.items()
        if isinstance(v, dict) and ("params_M" in v or "given" in v)
    }
    return pd.DataFrame(rows).T


def training_curves(rep: dict):
    """Loss curves of the stand-ins trained here (f_V probe loss, G's GAN losses and anchor, f_A
    InfoNCE); a part given as a file has no curve. None when nothing was trained."""
    trained = [k for k in ("f_V", "G", "f_A") if "history" in rep.get(k, {})]
    if not trained:
        return None
    fig, axes = plt.subplots(1, len(trained), figsize=(4.4 * len(trained), 3), squeeze=False)
    for ax, part in zip(axes[0], trained):
        h = rep[part]["history"]
        if part == "f_V":
            ax.plot(h["loss"], lw=0.8)
            ax.set(title="f_V: multi-label probe loss", xlabel="step")
        elif part == "G":
            for k in [k for k in ("d_loss", "g_adv", "anchor", "diversity") if k in h]:
                ax.plot(pd.Series(h[k]).rolling(20, min_periods=1).mean(), label=k, lw=0.8)
            ax.set(title="G: hinge GAN, coarse L1 anchor, diversity", xlabel="step")
            ax.legend(fontsize=7)
        else:
            ax.plot(h["loss"], marker=".")
            ax.set(title="f_A: InfoNCE to f_V (Sound2Scene)", xlabel="epoch")
    fig.tight_layout()
    return fig


def separator_curves(results: dict):
    """Train and validation loss per epoch for each alignment; the kept epoch is marked."""
    fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 3), squeeze=False)
    for ax, (name, r) in zip(axes[0], results.items()):
        ep = np.arange(1, len(r.history["train_loss"]) + 1)
        ax.plot(ep, r.history["train_loss"], label="train")
        ax.plot(ep, r.history["val_loss"], label="validation")
        ax.axvline(r.best_epoch + 1, color="grey", ls=":", label=f"kept: epoch {r.best_epoch + 1}")
        ax.set(title=f"separator {name}", xlabel="epoch", ylabel="loss (Eq. 1-3)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def embedding_map(groups: dict, labels: dict, title: str = "", method: str = "tsne", seed: int = 0):
    """2-D map (t-SNE or PCA) of several embedding sets side by side, coloured by class.
    groups: name -> (n, D) tensor; labels: name -> list of n class names."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    names = list(groups)
    X = torch.cat([torch.nn.functional.normalize(groups[n], dim=1) for n in names]).numpy()
    X = PCA(n_components=min(50, X.shape[1], len(X) - 1), random_state=seed).fit_transform(X)
    if method == "tsne":
        X = TSNE(2, perplexity=min(30, len(X) // 4), random_state=seed, init="pca").fit_transform(X)
    else:
        X = X[:, :2]
    classes = sorted({c for n in names for c in labels[n]})
    cmap = plt.get_cmap("tab20", len(classes))
    colour = {c: cmap(i) for i, c in enumerate(classes)}
    fig, axes = plt.subplots(1, len(names), figsize=(4.3 * len(names), 4.2), squeeze=False, sharex=True, sharey=True)
    start = 0
    for ax, n in zip(axes[0], names):
        pts = X[start : start + len(groups[n])]
        start += len(groups[n])
        ax.scatter(pts[:, 0], pts[:, 1], c=[colour[c] for c in labels[n]], s=9)
        ax.set_title(n, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [plt.Line2D([], [], marker="o", ls="", color=colour[c], label=c) for c in classes]
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def generation_grid(
    G, feats: torch.Tensor, reals: torch.Tensor | None, names: list[str], n_z: int = 3, title: str = "", seed: int = 0
):
    """Columns = items; first row the true image (if given), then G(z_k, feature) for n_z noises
    (the same z_k along a row, so rows show what the noise does and columns what the feature does)."""
    res = G.resolution
    rows, row_names = [], []
    if reals is not None:
        r = reals.permute(0, 3, 1, 2).float()
        rows.append(
            torch.nn.functional.interpolate(r, size=res, mode="area").round().byte().permute(0, 2, 3, 1).numpy()
        )
        row_names.append("true image")
    for k in range(n_z):
        z = generation.noise(1, G.dim_z, seed + k).repeat(len(feats), 1)
        rows.append(generation.from_unit(generation.sample(G, feats, z)).numpy())
        row_names.append(f"G(z{k + 1}, h)")
    short = [n if len(n) < 16 else n[:14] + "…" for n in names]
    return image_grid([list(r) for r in rows], row_names, short, title)


def combination_grids(p: Params, cat: pd.DataFrame, tuples: pd.DataFrame, images: dict, per_figure: int = 10):
    """The first test tuple of every combination: the true images, then each method's mixed image,
    then the separated images (cf. the paper's Figures 4 and 5). One figure per `per_figure` rows."""
    res = next(iter(images.values())).shape[1]
    first = tuples.groupby("combination").head(1)
    methods = [m for t, m in images if t == "mixed"]
    seps = [m for t, m in images if t == "separated_foreground"]
    k = slots.count(tuples)
    prefixes, tasks = slots.prefixes(k), slots.separated_tasks(k)
    cols = (
        [f"true {x}" for x in prefixes]
        + [f"mixed: {m}" for m in methods]
        + [f"{m}: {x}" for x in prefixes for m in seps]
    )
    truth = load_images_for(cat, first, res)
    figs = []
    for start in range(0, len(first), per_figure):
        rows, names = [], []
        for i in first.index[start : start + per_figure]:
            row = [truth[(x, i)] for x in prefixes]
            row += [images[("mixed", m)][i] for m in methods]
            row += [images[(task, m)][i] for task in tasks for m in seps]
            rows.append(row)
            names.append(tuples.loc[i, "combination"].replace(" + ", "\n+ "))
        figs.append(image_grid(rows, names, cols, cell=1.0))
    return figs


def load_images_for(cat: pd.DataFrame, tuples: pd.DataFrame, size: int) -> dict:
    """True foreground/background images of tuples, resized to the generator's size: (prefix,
    tuple index) -> uint8 image, prefixes fg, bg (and fg2, ... for K sources)."""
    out = {}
    path = dict(zip(cat["stem"], cat["image"]))
    prefixes = slots.prefixes(slots.count(tuples))
    for i, row in tuples.iterrows():
        for k, stem in ((x, row[f"{x}_stem"]) for x in prefixes):
            img = torch.from_numpy(data.load_image(path[stem])).permute(2, 0, 1)[None].float()
            out[(k, i)] = (
                torch.nn.functional.interpolate(img, size=size, mode="area")[0].round().byte().permute(1, 2, 0)
            )
    return out


def two_tasks_figure(
    p: Params, cat: pd.DataFrame, tuples: pd.DataFrame, images: dict, n: int = 4, method: str | None = None
):
    """The paper's two tasks on held-out mixtures of this run, one combination per row: the true
    images, the separated images, the mixed image, and the baseline's image. Also saved as
    <run>/figures/two_tasks.png for the book's results page."""
    method = method or next(m for t, m in images if t == "separated_foreground" and m != "Sound2Scene")
    res = next(iter(images.values())).shape[1]
    picks = tuples.groupby("combination").head(1).index[:n]
    truth = load_images_for(cat, tuples.loc[picks], res)
    k = slots.count(tuples)
    prefixes, tasks = slots.prefixes(k), slots.separated_tasks(k)
    rows = [
        [truth[(x, i)] for x in prefixes]
        + [images[(task, method)][i] for task in tasks]
        + [images[("mixed", method)][i], images[("mixed", "Sound2Scene")][i]]
        for i in picks
    ]
    blend = f"λ={p.mix_lambda}" if k == 2 else f"equal blend of {k}"
    cols = (
        [f"true {x}" for x in prefixes]
        + [f"separated {x}\n({method})" for x in prefixes]
        + [f"mixed, {blend}\n({method})", "Sound2Scene\n(f_A of the mix)"]
    )
    names = [tuples.loc[i, "combination"].replace(" + ", "\n+ ") for i in picks]
    fig = image_grid(rows, names, cols, cell=1.3)
    p.folder.figures.mkdir(parents=True, exist_ok=True)
    fig.savefig(p.folder.figure("two_tasks.png"), dpi=120, bbox_inches="tight")
    return fig


def show_source(*objects) -> None:
    """Print the code of functions or classes of avgas in the notebook, as a Markdown code block:
    the page shows the lines that run, read from the module (never a copy that could drift)."""
    code = "\n\n".join(textwrap.dedent(inspect.getsource(o)).rstrip() for o in objects)
    IPython.display.display(Markdown(f"```python\n{code}\n```"))  # looked up when called: a test replaces it


def separated_figure(cat: pd.DataFrame, tuples: pd.DataFrame, images: dict, i: int, methods: list[str], title: str):
    """One mixture of K sources (notebook 10): its true images, then per method a row of its K
    separated images and its mixed image (Sound2Scene: its one image of the mix)."""
    k = slots.count(tuples)
    res = next(iter(images.values())).shape[1]
    truth = load_images_for(cat, tuples.loc[[i]], res)
    blank = torch.full((res, res, 3), 255, dtype=torch.uint8)
    rows = [[truth[(x, i)] for x in slots.prefixes(k)] + [blank]]
    names = ["true images"]
    for m in methods:
        seps = [images[(t, m)][i] if (t, m) in images else blank for t in slots.separated_tasks(k)]
        rows.append(seps + [images[("mixed", m)][i]])
        names.append(m)
    cols = [f"{slot.replace('_', ' ')}" for slot in slots.slot_names(k)] + ["mixed image"]
    return image_grid(rows, names, cols, title=title, cell=1.3)

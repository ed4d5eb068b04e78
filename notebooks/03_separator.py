# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 3. The audio-visual separator
#
# The separator $f_{AV}$ reads the mixed spectrogram and outputs two embeddings, one per source. Each
# half is pulled towards its own source by symmetric InfoNCE (logits: $-L_2$ distance of unit
# vectors) — towards $f_A$ of the single clip (**A2A**), $f_V$ of its image (**A2V**), or both. One
# separator per alignment is trained here — for each of `separator_seeds` seeds, so that a result
# is not one lucky initialisation — the epoch with the lowest validation loss is kept, and each half
# is checked: is it closer to its own source than to the other one?
#
# Beside them, two **controls** ask whether AV-GAS's gain comes from *separating* or merely from
# *training on mixtures*, one matched to each alignment: Sound2Scene's $f_A$, started from its
# weights and fine-tuned on the same training mixtures towards one blended target with the same
# InfoNCE, optimiser, epochs and selection — $\mathrm{unit}(\hat f_A(a_1) + \hat f_A(a_2))$ for A2A's
# control, and the blend of the two images' features $\mathrm{unit}(\hat f_V(v_1) + \hat f_V(v_2))$ for
# A2V's ("separation, or $f_A$ tuned towards the image blend?"). Each gives one embedding per mix,
# so they appear in Table 1 only, and each is compared with its own alignment there.

# %% tags=["parameters"]
params_file = "params/quick.yaml"  # a params file (relative to the project root); papermill passes the run's

# %%
import json

import pandas as pd
import torch
from IPython.display import display

from avgas import checkpoints, data, params, report, separators, train
from avgas.core import losses, separator

P = params.from_notebook(globals())
torch.manual_seed(P.seed)
cat = data.catalogue(P)
tuples = data.make_tuples(cat, P)
fa, fv, _ = checkpoints.load_parts(P)
splits = {s: separators.separator_data(P, cat, tuples, s, fa, fv) for s in ("train", "val")}  # test: 04-08 only
print(
    {s: tuple(d.mix.shape) for s, d in splits.items()},
    "| separator width",
    P.separator_width,
    "| alignments",
    P.alignments,
)

# %% [markdown]
# ## The loss, as the paper writes it (Eq. 1–3)
# For a batch of $B$ tuples, a half $z$ of the separator's output and its targets $y$ (unit vectors
# $\bar u = u / \lVert u \rVert$), InfoNCE with negative $L_2$ distances as logits:
#
# $$\ell(z, y) = -\frac{1}{B} \sum_{i=1}^{B} \log \frac{\exp(-\lVert \bar z_i - \bar y_i \rVert_2)}{\sum_{k=1}^{B} \exp(-\lVert \bar z_i - \bar y_k \rVert_2)}$$
#
# and, for each source $j$ (foreground, background), both directions:
# $\mathcal{L}_{A2A} = \sum_j \ell(z^{AV}_j, f_A(a_j)) + \ell(f_A(a_j), z^{AV}_j)$ (Eq. 2); A2V replaces
# $f_A(a_j)$ by $f_V(v_j)$ (Eq. 3), and A2A+A2V adds the two. The code that runs below:

# %%
report.show_source(losses.l2_logits, losses.infonce, losses.symmetric_infonce, losses.separator_loss)

# %% [markdown]
# ## Training (or reusing a finished training; `resume: true` continues a killed one)

# %%
trained = train.train_all(P, splits["train"], splits["val"])  # every alignment (and the controls) x seed
display(pd.DataFrame([{"model": name, **r.summary()} for name, r in trained.items()]).set_index("model"))
results = {name: r for name, r in trained.items() if "#" not in name}  # the first seed's curves
fig = report.separator_curves(results)

# %% [markdown]
# ## Does each half find its own source?
# For every validation tuple (test tuples are read once, by notebooks 04–08): is $h_{fg}$ closer (cosine) to $f_A$ of the foreground clip than to $f_A$ of
# the background clip — and likewise for $h_{bg}$? The **baseline** is Sound2Scene on the mix: one
# embedding $f_A(\text{mix})$ that has to stand for both sources.

# %%
held = splits["val"]  # diagnostics on validation tuples: test tuples are read once, by 04-08
a_fg, a_bg = held.targets["A"][0], held.targets["A"][-1]  # the first foreground and the background
baseline = separator.embed_mix(fa, held.mix)
# a PIT separator's slots are put in source order by the assignment it trained with (on embeddings)
separated = {
    a: separator.matched(a, separator.separate(separators.load_separator(P, a), held.mix), held.targets)
    for a in P.alignments
}
rows = {"Sound2Scene f_A(mix)": separators.separation_scores((baseline,) * held.sources, held.targets)}
# (a PIT separator's rows are near 1 partly by construction: its slots were matched with these targets)
rows.update(
    {
        f"AV-GAS {a}" + (" (oracle-matched slots)" if losses.is_pit(a) else ""): separators.separation_scores(
            separated[a], held.targets
        )
        for a in P.alignments
    }
)
scores = pd.DataFrame(rows).T.round(3)
P.folder.separation.write_text(
    json.dumps(
        {
            "val_tuples": len(held.mix),
            "scores": scores.to_dict(orient="index"),
            "training": {a: r.summary() for a, r in results.items()},
        },
        indent=1,
    )
)
scores

# %% [markdown]
# ## Separated embeddings next to their targets
# t-SNE of the validation foreground halves $h_{fg}$ and background halves $h_{bg}$ (A2A, or the first
# alignment trained), coloured by class, beside the targets $f_A$ of the single sources and the
# baseline $f_A(\text{mix})$ coloured by foreground class.

# %%
first = P.alignments[0]
h_fg, h_bg = separated[first][0], separated[first][-1]
fg_lab, bg_lab = list(held.tuples["fg_label"]), list(held.tuples["bg_label"])
fig = report.embedding_map(
    {
        f"{first}: h_fg": h_fg,
        "target f_A(fg)": a_fg,
        f"{first}: h_bg": h_bg,
        "target f_A(bg)": a_bg,
        "baseline f_A(mix)": baseline,
    },
    {
        f"{first}: h_fg": fg_lab,
        "target f_A(fg)": fg_lab,
        f"{first}: h_bg": bg_lab,
        "target f_A(bg)": bg_lab,
        "baseline f_A(mix)": fg_lab,
    },
    title="validation embeddings (t-SNE, shared axes)",
)

# %% [markdown]
# ## What an epoch costs
# The epoch's time per batch against a bare forward/backward/update on batches gathered beforehand:
# the difference is the data path (indexing the cached spectrograms and targets).

# %%
pure = train.pure_step_seconds(P, splits["train"], first)
n_batches = -(-len(splits["train"].mix) // P.batch_size)
epoch = pd.Series(results[first].history["seconds"]).median()
print(
    f"epoch: {epoch:.2f} s for {n_batches} batches = {epoch / n_batches * 1000:.1f} ms per batch "
    f"(validation included); bare step: {pure * 1000:.1f} ms; data path + validation: "
    f"{(epoch / n_batches / pure - 1) * 100:+.0f}%"
)

# %% [markdown]
# ## What this run shows

# %%
best = pd.DataFrame([{"model": name, **r.summary()} for name, r in trained.items()]).set_index("model")
col = "fg closer to own (f_A)"
print(
    f"{len(trained)} trainings (alignments {', '.join(P.alignments)}, controls {P.control}, {P.separator_seeds} seed(s)); "
    f"best epochs {best['best_epoch'].min()}-{best['best_epoch'].max()} of {P.epochs}. On validation tuples, "
    f"the A2A foreground half is closer to its own source's f_A than to the other's in "
    f"{scores.loc['AV-GAS A2A', col]:.0%} of tuples, against {scores.loc['Sound2Scene f_A(mix)', col]:.0%} "
    f"for Sound2Scene's single embedding."
    if "AV-GAS A2A" in scores.index
    else best
)

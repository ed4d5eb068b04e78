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
# # 4. Generation: separated images, mixed images, the baseline and two references
#
# For every held-out mixture: the separated images $G(z, h_{fg})$ and $G(z, h_{bg})$, the mixed image
# $G(z, \lambda h_{fg} + (1-\lambda) h_{bg})$, the Sound2Scene baseline $G(z, f_A(\text{mix}))$, and the
# two **reference** rows that condition $G$ on features of the *true single sources* instead of a
# separator's outputs: $f_V$ of the true images (the A2V target) and $f_A$ of the true single clips
# (the A2A target). They show what the generator and the judges allow when separation is perfect —
# a reference to read the methods against, not a bound a method cannot pass. Every method gets the same noise $z$ for the same tuple.

# %% tags=["parameters"]
params_file = "params/quick.yaml"  # a params file (relative to the project root); papermill passes the run's

# %%
import torch

from avgas import checkpoints, data, generate, params, report, separators
from avgas.core import generation

P = params.from_notebook(globals())
cat = data.catalogue(P)
tuples = data.make_tuples(cat, P)
fa, fv, G = checkpoints.load_parts(P)
test = separators.separator_data(P, cat, tuples, "test", fa, fv)
embeddings, separated = generate.conditions(P, test, fa)  # f_A(mix), every separator and seed, the controls,
# and the two references
images = generate.images_for(G, embeddings, P.seed)
generate.save(P.folder.generated, images, list(test.tuples["tuple_id"]))
print(f"{len(test.mix)} test tuples x {len(images)} (task, method) sets of {G.resolution}-px images")

# %% [markdown]
# ## Eq. 4 and its code
# The paper's generation (Sec. 3.3.2, its Eq. 4) gives $G$ one condition made of the separator's two halves,
#
# $$\hat v = G\big(z^N,\; \lambda z^{AV}_1 + (1-\lambda)\, z^{AV}_2\big), \qquad z^N \sim \mathcal{N}(0, I),$$
#
# with $\lambda$ = `mix_lambda` (the paper's figures use 0.5). Separation, which the paper does not number,
# gives $G$ each half alone, $G(z^N, z^{AV}_j)$. IC-GAN's instance features are unit vectors, so the halves
# are normalised, blended and normalised again (`blend`); with K sources the mixed condition is the
# equal blend of the K slots (`mixed_condition`); `images_for` draws one $z$ per tuple and gives it to
# every method, so the methods are compared on the same draws.

# %%
report.show_source(generation.blend, generation.mixed_condition, generation.images_for)

# %% [markdown]
# ## The two tasks on held-out mixtures
# Separation (one image per source) and generation (one image holding both), beside the baseline.

# %%
fig = report.two_tasks_figure(P, cat, test.tuples, images)

# %% [markdown]
# ## One tuple per combination (cf. the paper's Figures 4 and 5)

# %%
figs = report.combination_grids(P, cat, test.tuples, images)

# %% [markdown]
# ## The λ sweep: from the background ($\lambda=0$) to the foreground ($\lambda=1$)
# AV-GAS's separated embeddings (first alignment) and, below each, the reference: the true images' features.

# %%
lambdas = [0.0, 0.25, 0.5, 0.75, 1.0]
first = P.alignments[0]
picks = test.tuples.groupby("combination").head(1).index[:4].tolist()
for i in picks:
    h_fg, h_bg = separated[first][0], separated[first][-1]  # K sources: the first foreground and the background
    v_fg, v_bg = test.targets["V"][0], test.targets["V"][-1]
    rows = [
        generation.lambda_sweep(G, h_fg[i : i + 1], h_bg[i : i + 1], lambdas, P.seed + i)[:, 0],
        generation.lambda_sweep(G, v_fg[i : i + 1], v_bg[i : i + 1], lambdas, P.seed + i)[:, 0],
    ]
    fig = report.image_grid(
        [list(r) for r in rows],
        [f"AV-GAS {first}", "reference: f_V"],
        [f"λ={v}" for v in lambdas],
        title=test.tuples.loc[i, "combination"],
        cell=1.3,
    )

# %% [markdown]
# ## What this run shows
# Before any judge looks: how close each method's mixed condition (Eq. 4's input to $G$; for
# Sound2Scene, $f_A$ of the mix) lies to the reference's, the blend of the true images' features
# (cosine, mean over the test tuples and the seeds; 1 would be the reference itself). It describes
# where the conditions lie, not how good the images are: A2A aims its halves at $f_A$'s targets and
# A2V at $f_V$'s, so A2V starts closer to this reference. Notebooks 05–07 score the images.

# %%
ref = embeddings[("mixed", generate.REFERENCE_IMAGE)]
near = {}
for (task, method), h in embeddings.items():
    if task == "mixed" and method != generate.REFERENCE_IMAGE:
        near.setdefault(method.split("#")[0], []).append(torch.nn.functional.cosine_similarity(h, ref).mean().item())
ranked = sorted(((sum(v) / len(v), m) for m, v in near.items()), reverse=True)
print(
    f"{len(test.mix)} test tuples, {len(images)} (task, method) image sets, the same z per tuple for every method. "
    "Mixed condition against the true images' blend, mean cosine: " + "; ".join(f"{m} {c:.2f}" for c, m in ranked) + "."
)

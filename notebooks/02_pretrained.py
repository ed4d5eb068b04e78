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
# # 2. The frozen parts: f_A, f_V and G
#
# AV-GAS trains nothing but its separator: Sound2Scene's audio encoder $f_A$, the SwAV image
# encoder $f_V$ and the IC-GAN generator $G$ stay frozen. The real run loads the released files. The
# synthetic world has none, so this notebook trains small stand-ins of the same architectures on the
# world's images and sounds, **saves them in the released files' formats**, and checks what the method
# relies on: $G(z, f_V(v))$ paints something like $v$, and $f_A$ of a sound lands next to $f_V$ of its
# image.

# %% tags=["parameters"]
params_file = "params/quick.yaml"  # a params file (relative to the project root); papermill passes the run's

# %%
import pandas as pd
import torch
from IPython.display import display

from avgas import checkpoints, data, metrics, models, params, report, separators, standins

P = params.from_notebook(globals())
torch.manual_seed(P.seed)
cat = data.catalogue(P)
print(
    f"run '{P.name}', world={P.world}; weights: {P.weight_path('sound2scene_checkpoint')}, "
    f"{P.weight_path('swav_checkpoint')}, {P.weight_path('icgan_folder')}"
)

# %% [markdown]
# ## Train the stand-ins if they are missing (synthetic world only)
# Saved ones are reused unless `retrain_stand_ins: true`; on the real run nothing is trained here.
# Like Sound2Scene's parts, the stand-ins learn from data of their own (`protocol.standin_pool`):
# never the run's clips, and two-class scenes only of the *generator pairs* — other pairings of
# the same classes than the evaluated ones — so no scene (and no blend of features) of a pair that
# Tables 1–3 score was ever shown to $G$ or $f_V$. The split is recorded in `protocol.json`.

# %%
stand_ins = standins.ensure(P)
if stand_ins:
    display(report.stand_in_table(stand_ins))
    fig = report.training_curves(stand_ins)

# %%
if P.world == "synthetic":  # which pairs are evaluated, which the stand-ins saw: disjoint by construction
    from avgas import protocol

    rec = protocol.save(P)
    shared = set(rec["evaluated_pairs"]) & set(rec["generator_pairs"])
    print(
        f"{len(rec['evaluated_pairs'])} evaluated pairs; G and f_V saw two-class scenes of "
        f"{len(rec['generator_pairs'])} other pairs; pairs in both: {len(shared)}"
    )
    display(pd.DataFrame(rec["pools"]).T)

# %% [markdown]
# ## Load the three parts through the real-format loaders

# %%
fa, fv, G = checkpoints.load_parts(P)
for name, m in (("f_A", fa), ("f_V", fv), ("G", G)):
    print(f"{name}: {sum(t.numel() for t in m.parameters()) / 1e6:.2f} M parameters")
print(f"G: {G.resolution} px, z of {G.dim_z} in {len(G.blocks) + 1} chunks")

# %% [markdown]
# ## Reconstructions: $G(z, f_V(\text{image}))$ on validation images
# One validation image per class (test images are read once, by notebooks 04–08). Along a row the noise is fixed; down a column, the noise changes
# and the feature stays. A good generator keeps the class (column) and varies the details (rows).

# %%
held = cat[cat["split"] == "val"].groupby("label").head(1)  # validation clips: test is read by 04-08 only
held_images = data.load_images(cat, held["stem"])
held_feats = models.encode_images(fv, held_images, P.fv_image_size)
half = len(held) // 2
for part in (slice(0, half), slice(half, None)):
    fig = report.generation_grid(
        G, held_feats[part], held_images[part], list(held["label"])[part], n_z=3, title="G(z, f_V(validation image))"
    )

# %% [markdown]
# Two-class scenes of the evaluated pairs from the validation stream (no scene of these pairs was
# ever shown to $f_V$ or $G$), and the blend of the two single images'
# features, $G(z, \tfrac12 f_V(v_{fg}) + \tfrac12 f_V(v_{bg}))$ — what the paper's mixed generation asks of $G$.
# (With `sources: K`, scenes of the run's K-class groups and the equal blend of their K images' features.)

# %%
by_label = dict(zip(held["label"], held_feats))
pairs = P.groups()  # (foreground, background); K sources: (foreground, ..., background)
if P.world == "synthetic":  # the world draws two-class scenes of known classes; VGGSound has none
    from avgas import world

    scenes, pairs = world.composites(P, "val", 1)
    scenes = torch.from_numpy(scenes)
    fig = report.generation_grid(
        G,
        models.encode_images(fv, scenes, P.fv_image_size),
        scenes,
        [" + ".join(g) for g in pairs],
        n_z=2,
        title=f"G(z, f_V({P.sources}-class scene))",
    )
blends = torch.stack([sum(by_label[c] for c in g) for g in pairs])
fig = report.generation_grid(
    G, blends, None, [" + ".join(g) for g in pairs], n_z=2, title="G(z, blend of the single images' features)"
)

# %% [markdown]
# ## Sound2Scene's own task: an image from a single-class sound, $G(z, f_A(\text{audio}))$
# The same held-out clips, now through their *audio*. How often is the nearest image feature of the
# audio embedding one of the same class? (audio → image retrieval among the validation clips)

# %%
held_all = cat[cat["split"] == "val"]
# cached as "val_clips": "val" is 03's cache of the validation tuples' clips (another set)
targets = separators.frozen_targets(P, cat, held_all["stem"], "val_clips", fa, fv)
sim = torch.nn.functional.normalize(targets.audio, dim=1) @ torch.nn.functional.normalize(targets.image, dim=1).T
labels = list(held_all["label"])
hit = [labels[j] == labels[i] for i, j in enumerate(sim.argmax(1).tolist())]
print(
    f"audio -> image retrieval, class of the nearest image correct: {sum(hit) / len(hit):.2f} "
    f"({len(hit)} validation clips, chance {1 / held_all['label'].nunique():.2f})"
)
audio_feats, _ = targets.rows(held["stem"])
for part in (slice(0, half), slice(half, None)):
    fig = report.generation_grid(
        G,
        audio_feats[part],
        held_images[part],
        list(held["label"])[part],
        n_z=2,
        title="G(z, f_A(validation audio)) — Sound2Scene on single-class sounds",
    )

# %% [markdown]
# ## What this run shows
# Computed from this run: where the frozen parts came from, whether the stand-ins ever saw an
# evaluated pair, and whether $f_A$ of a sound lands next to $f_V$ of its class's images more often
# than chance (a paired bootstrap interval over the validation clips).

# %%
chance = 1 / held_all["label"].nunique()
ci = metrics.paired_ci([float(h) for h in hit], [chance] * len(hit))
origin = (
    "stand-ins trained on their own pool (synthetic world)" if stand_ins else "loaded from the files the params name"
)
overlap = f"; evaluated pairs that G and f_V saw as scenes: {len(shared)}" if P.world == "synthetic" else ""
print(
    f"f_A, f_V and G: {origin}, read back through the released formats' loaders{overlap}. "
    f"Audio -> image retrieval on {len(hit)} validation clips: the nearest image feature is of the sound's class "
    f"in {sum(hit) / len(hit):.2f} of them against chance {chance:.2f} (difference {ci['difference']:+.2f}, 95% "
    f"interval [{ci['ci95'][0]:+.2f}, {ci['ci95'][1]:+.2f}]): 'above chance' {metrics.verdict(ci)}."
)

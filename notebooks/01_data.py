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
# # 1. The data: a soundscape is two sounds at once
#
# AV-GAS trains on **tuples** (mixed audio, audio 1, audio 2, image 1, image 2): a foreground clip
# (a dog barking) and a background clip (hail) from the 20 combinations of the paper's Table 4,
# added into one soundscape. This notebook makes (or, for the real run, reads) the clips, splits
# them by clip so that no test sound is ever heard in training, builds the tuples and turns every
# waveform into Sound2Scene's spectrogram. Listen to the classes, look at their images, and at one
# tuple as the separator will see it.

# %% tags=["parameters"]
params_file = "params/quick.yaml"  # a params file (relative to the project root); papermill passes the run's

# %%
from IPython.display import display

from avgas import data, paper, params, report, slots

P = params.from_notebook(globals())
print(f"run '{P.name}': world={P.world}, {P.clip_seconds:g} s clips, data in {P.data_dir}")

# %% [markdown]
# ## The world
# Generated once per seed and reused while its settings are unchanged; deterministic, so the same
# params give the same files byte for byte.

# %%
prepared = data.prepare(P)
print(
    f"{prepared.n_clips} clips, {prepared.megabytes:.1f} MB in {prepared.data_dir}"
    + (f", generated in {prepared.seconds:.1f} s" if prepared.generated else " (reused)")
)

# %% [markdown]
# The real run reads clips that `python -m avgas prepare-vggsound` ingested (from the videos to this layout);
# its summary and skip-list are shown here: clips found, skipped with a reason, and frames that fell back
# to the middle of the clip.

# %%
if P.world == "vggsound":
    from avgas import vggsound

    ingested = vggsound.report(P)
    if ingested is None:
        print("no ingestion record in", P.data_dir, "(data prepared elsewhere)")
    else:
        display(ingested[0], ingested[1])

# %% [markdown]
# ## The catalogue: clips per class and split
# The metadata csv has VGGSound's `train` / `test` split; a fixed share of each class's `train` clips
# is held out as `val`, used only to choose the separator's best epoch (Sound2Scene selected models on
# training data; we do not). Every clip lives in exactly one split.

# %%
cat = data.catalogue(P)
if cat.attrs["skipped"]:
    print(f"skipped {len(cat.attrs['skipped'])} clips:", cat.attrs["skipped"][:10])
data.counts_table(cat, P)

# %% [markdown]
# ## Listen to every class
# Backgrounds are stationary textures that fill the clip; foregrounds are events that come and go.
# The prompt is the single word of the paper's Table 5 that the detector and CLIP look for.

# %%
report.class_players(cat, P)

# %% [markdown]
# ## What each class looks like, and its spectrogram
# Sound2Scene's input: a linear-frequency power spectrogram (window 512, hop 159, Tukey window),
# log, standardised per clip. Background scenes fill the frame; foreground objects have a
# class-specific shape and colour, drawn large so that a small generator can still paint them.

# %%
fig = report.class_gallery(cat, P)

# %%
for label in P.combination_list()[0]:  # the first combination's foreground and background
    fig = report.image_variety(cat, label)

# %% [markdown]
# ## Training tuples
# For every combination, (foreground clip, background clip) pairs drawn within one split, so no
# source clip is shared between train, val and test.

# %%
tuples = data.make_tuples(cat, P)
tuples.to_csv(P.folder.tuples, index=False)
data.tuple_table(tuples)

# %% [markdown]
# ## One tuple, as in the paper's Figure 2
# The mixture is the sum of the two sources (relative level `relative_level_db`, 0 dB in the paper).
# Note how the stationary background covers the whole spectrogram while the foreground event is
# intermittent: a single audio embedding of the mix tends to describe the background only.

# %%
fig, players = report.tuple_view(cat, tuples.iloc[0], P)
display(players)

# %%
fig, players = report.tuple_view(cat, tuples[tuples["split"] == "train"].iloc[len(tuples) // 3], P)
display(players)

# %% [markdown]
# ## Spectrograms, cached
# The mixtures' spectrograms of every split are computed once here (batched torch, equal to scipy's
# within 1e-5) and cached in the run folder for the separator.

# %%
for split in data.SPLITS:
    s = data.mix_spectrograms(P, cat, tuples[tuples["split"] == split], split)
    print(f"{split:5s}: {tuple(s.shape)}  (tuples, frequency bins, frames)")

# %% [markdown]
# ## What this run shows
# Computed from this run's catalogue and tuples: what the separator will train on, and the split
# rule checked (no source clip in two splits). The paper's 20 combinations are 15 realistic scenes
# and 5 unrealistic ones (the underwater bubbling background's five foregrounds, Table 4); all are
# trained on.

# %%
unrealistic = set(paper.facts()["combinations"]["unrealistic"])
combos = P.combination_list()
clips_of = {
    sp: set().union(*(set(tuples.loc[tuples["split"] == sp, c]) for c in slots.stem_columns(tuples)))
    for sp in data.SPLITS
}  # train, val, test (the unseen pairings reuse test clips, by design)
shared = sum(len(clips_of[a] & clips_of[b]) for a in clips_of for b in clips_of if a < b)
per_split = tuples["split"].value_counts()
print(
    f"{cat['label'].nunique()} classes and {len(cat)} usable clips ({len(cat.attrs['skipped'])} skipped, each with "
    f"its reason); {len(combos)} combinations, of which {sum(bg in unrealistic for _, bg in combos)} are the "
    f"paper's unrealistic ones; tuples per split: {', '.join(f'{k} {v}' for k, v in per_split.items())}; "
    f"source clips shared between train, val and test: {shared}. Each mixture is one {s.shape[1]} x {s.shape[2]} spectrogram "
    f"(frequency bins x frames) that the separator reads."
)

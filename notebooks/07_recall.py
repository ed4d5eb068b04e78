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
# # 7. R@K with CLIP
#
# Each generated image is compared with every candidate prompt by CLIP image–text similarity. A
# mixed image counts for **R@2\*** when both of its classes are the top two prompts; a separated image
# counts for **R@1** when its class is the top prompt. The real run uses OpenCLIP ViT-B-32 from a
# local file; the synthetic world trains a small OpenCLIP on the judge pool's true scenes and prompts
# (images of its own, none of which the generator saw), and measures it both ways on the pool's
# held-out images: recall, and how often an image showing one class of a pair has both in its top 2.
#
# With $T_k(x)$ the $k$ prompts most similar to image $x$ and $C_i$ the classes image $x_i$ should
# show, the recall the tables report is
#
# $$\mathrm{R@K} = \frac{1}{N} \sum_{i=1}^{N} \mathbb{1}\left[\, C_i \subseteq T_{|C_i|}(x_i) \,\right],$$
#
# R@2\* for a mixed image ($|C_i| = 2$, both classes in the top two) and R@1 for a separated one.

# %% tags=["parameters"]
params_file = "params/quick.yaml"  # a params file (relative to the project root); papermill passes the run's

# %%
import pandas as pd
from IPython.display import display

from avgas import data, generate, judges, params, report, scoring

P = params.from_notebook(globals())
cat = data.catalogue(P)
test, images, size = generate.load_run(P, cat)

# %% [markdown]
# ## The CLIP judge, checked both ways

# %%
clip = judges.clip.judge(P, cat, size)
v = clip.report["held-out"]
display(pd.DataFrame([clip.report["validation"], v], index=["validation", "held-out test"]).T.round(3))

# %% [markdown]
# ## The checks R@K claims rest on
# An R@1 claim rests on top-1 accuracy and on the confusion of a pair's two classes; an R@2* claim on
# recall and on the false success of a one-class image, read against R@2*'s **chance floor**: a judge
# that ranks the one class first and draws its second guess uniformly from the other words reaches
# R@2* with probability 1/(words − 1) on its own. Counted with exact 95% bounds on the judge pool's
# held-out true images and on G's images of their features (the rule: the book's reproduction notes).

# %%
from avgas import results
from avgas.judges import checks as judge_checks

rk_checks = scoring.judge_checks(P, clip)
print(f"R@2*'s chance floor with {len(clip.vocabulary)} words: {judge_checks.chance_floor(len(clip.vocabulary)):.3f}")
results.check_table({"checks": {clip.name: rk_checks}}, judge=clip.name)

# %% [markdown]
# ## The code
# The prompts ranked by image–text similarity (`words`), and one image's term of the sum (`hits`):

# %%
report.show_source(judges.ClipJudge.words, judges.ClipJudge.hits)

# %% [markdown]
# ## R@2* (mixed) and R@1 (separated), mean ± std over the combinations

# %%
table = scoring.recall(P, clip, test, images, rk_checks)  # also writes metrics_rk.json
table

# %% [markdown]
# ## Relative loudness: the paper's failure case
# The paper's supplementary material (C) shows a quiet source vanishing from the image. The held-out
# mixtures are mixed again with the foreground at −20, −10, 0, +10 and +20 dB relative to the background
# (both clips first brought to the same RMS; the same clips, the same noise $z$, every seed), and, as its
# own point, the natural-level mix that Table 1 scores (the clips at their own levels, added). The mixed
# images of Sound2Scene, AV-GAS A2A and the two controls are scored with this run's detector (CRS) and
# CLIP (R@2*) — and, since CRS only says whether *both* classes were found, the detector also says
# *which* source it finds: the rate at which the foreground is found and the rate at which the
# background is found.

# %%
from avgas import checkpoints, loudness

loud = None
if P.sources == 2:  # the paper's failure case is about two sources; K sources: notebook 10's chapter
    fa, _, G = checkpoints.load_parts(P)
    detector = judges.detector.judge(P, cat, size, clip=clip)  # the judge of notebook 06
    loud = loudness.sweep(P, cat, test, fa, G, detector, clip)
    fig = loudness.plot(loud)
    presence_fig = loudness.plot_presence(loud)
    loudness.save(P, loud, fig, presence_fig)
    display(loudness.presence(loud))  # mean over seeds; the natural mix last
else:
    print(f"sources: {P.sources}: the loudness study (two sources, the paper's Supp. C) is skipped")

# %% [markdown]
# The second figure of the cell above shows which source vanishes as it gets quieter, one panel per
# method (solid: the foreground found, dashed: the background found; diamonds: the natural-level mix
# of Table 1, at its median level); the first, CRS and R@2* at each level.
# The paired intervals of each level against 0 dB, for A2A's foreground, are in `metrics_loudness.json`
# (`A2A at 0 dB - A2A at this level`, metric `foreground`).

# %% [markdown]
# ## What this run shows

# %%
print(
    f"Mixed images: Sound2Scene {table.loc['Sound2Scene', 'mixed']}, AV-GAS A2A "
    f"{table.loc['A2A', 'mixed']} (CLIP {results.check_phrase(rk_checks, 'R@2*', 'mixed')})."
)
if loud is not None:
    m = loud.groupby(["method", "level"])[["CRS", "foreground found", "background found"]].mean()
    for lv in ("-20 dB", "+0 dB", "+20 dB", loudness.NATURAL):
        r = m.loc[("A2A", lv)]
        print(
            f"A2A, foreground at {lv}: CRS {r['CRS']:.2f}, foreground found {r['foreground found']:.2f}, "
            f"background found {r['background found']:.2f}."
        )

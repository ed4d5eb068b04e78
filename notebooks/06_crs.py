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
# # 6. CRS: does the image show every class of the mix?
#
# The paper's class representation score (Eq. 5) over $N$ generated images $x_i$, each
# with the set $C_i$ of classes it should show and the set $D(x_i)$ of Table 5 words an
# open-vocabulary detector finds in it:
#
# $$\mathrm{CRS} = \frac{1}{N} \sum_{i=1}^{N} \mathbb{1}\left[\, C_i \subseteq D(x_i) \,\right]$$
#
# CRS is the share of images in which an open-vocabulary detector finds
# **every** class of the mix (both for a mixed image, the one source for a separated image), with the
# single-word prompts of the paper's Table 5. The real run uses YOLO-World; the synthetic world uses a
# YOLOv8n trained from its yaml on the judge pool's true scenes with known boxes (images of its own,
# none of which the generator saw), saved as a normal Ultralytics file and run through the same code.
# Its presence rule, a threshold on its confidence, is chosen on the pool's validation images — the
# most recall whose false success stays within the limit of `judges.choose_conf` — and it is then
# measured both ways on the pool's held-out test images: recall, and how often an image showing only
# one class of a pair is scored as showing both (a CRS success it did not earn).
#
# A CRS claim rests on the detector's **check**: presence recall on scenes of the evaluated pairs
# (unseen pairings included) and the false-presence rate, counted with exact 95% bounds, on the
# held-out true images *and* on the images G makes from their f_V features. The rule that turns a
# check into a verdict is written once, in the book's reproduction notes ("When a claim is told").

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
# ## The code
# $D(x_i)$ is `words`, the detector's finds at its confidence threshold; one image's term of the sum
# is `hits`; `scoring.crs` averages the hits per combination and per test tuple.

# %%
report.show_source(judges.DetectorJudge.words, judges.DetectorJudge.hits)

# %% [markdown]
# ## The detector, checked both ways

# %%
detector = judges.detector.judge(P, cat, size)
v = detector.report["held-out"]
print(f"confidence threshold: {detector.conf}")
display(pd.DataFrame([detector.report["validation"], v], index=["validation", "held-out test"]).T.round(3))

# %% [markdown]
# ## The check CRS claims rest on
# Each rate counted (k/n) with its exact (Clopper–Pearson) 95% bound, on the judge pool's held-out true
# images and on G's images of their features; a claim type whose check fails reads "cannot tell" in
# notebook 08. This needs G, so it is computed here, not when the detector is trained.

# %%
from avgas import results

crs_checks = scoring.judge_checks(P, detector)
results.check_table({"checks": {detector.name: crs_checks}}, judge=detector.name)

# %% [markdown]
# ## The score settings are chosen on: CRS on the *validation* tuples
# Settings of the stand-ins and the separators (`g_steps`, `g_blend_share`, `epochs`, ...) are compared
# between runs on these numbers, never on the test table below: the same generation and the same
# detector, on the run's validation mixtures with a noise draw of their own (`avgas.validation`,
# saved as `validation.json`; `python -m avgas validate RUN_A RUN_B` sets runs side by side).

# %%
from avgas import validation

on_val = validation.save(P)
print(f"{on_val['tuples']} validation tuples, detector threshold {on_val['detector threshold']}")
pd.DataFrame(on_val["CRS"]).round(2)

# %% [markdown]
# ## CRS per method and task (mean ± std over the combinations)

# %%
table = scoring.crs(P, detector, test, images, crs_checks)  # also writes metrics_crs.json
table

# %% [markdown]
# ## What this run shows

# %%
mixed = table["mixed"]
print(
    f"On {len(test)} held-out mixtures, the detector ({results.check_phrase(crs_checks, 'CRS', 'mixed')}) finds both "
    f"classes in {mixed['Sound2Scene']} of Sound2Scene's images and {mixed['A2A']} of AV-GAS A2A's "
    f"(separator seed {P.seed}; mean ± std over the combinations). With the true images' features, G's images "
    f"score {mixed['reference: true image features']}. Notebook 08 pools the seeds and states the claims."
)

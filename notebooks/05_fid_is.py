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
# # 5. FID and IS
#
# Image quality and variety, as TorchMetrics computes them, per combination. The real run uses the
# Inception network from a local file; the synthetic world uses a scene classifier trained on its
# judge pool's true images (features for FID, logits for IS) — its own images, none of which
# the generator was trained on — and checked both ways on the pool's held-out images first. FID is
# computed for separated images only, against the held-out true images of the same class, as the
# paper explains (a mixed image has no single true counterpart).
#
# **FID** (Fréchet Inception distance) compares two clouds of judge features, the true images' and the
# generated ones', each summarised by its mean $\mu$ and covariance $\Sigma$; lower is closer:
#
# $$\mathrm{FID} = \lVert \mu_r - \mu_g \rVert_2^2 + \mathrm{Tr}\big(\Sigma_r + \Sigma_g - 2\,(\Sigma_r \Sigma_g)^{1/2}\big).$$
#
# **IS** (Inception score) reads the judge's class probabilities $p(y \mid x)$ of each generated image
# $x$: high when each image is confidently one class and the images together cover many classes
# ($p(y)$, the mean of $p(y \mid x)$ over the images):
#
# $$\mathrm{IS} = \exp\Big(\mathbb{E}_{x}\, \mathrm{KL}\big(p(y \mid x) \,\Vert\, p(y)\big)\Big).$$

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
# ## The judge, checked both ways on held-out true images of its own pool
# Recall (a two-class scene's classes are its top 2, a single image's class its top 1) and the false
# success rate (an image showing one class of a pair has both in its top 2).

# %%
judge = judges.classifier.judge(P, cat, size)  # synthetic: the scene classifier; real: Inception from a file
judge_report = judge.report
held_out = judge_report.get("held-out", {})
if held_out:
    display(pd.DataFrame([judge_report["validation"], held_out], index=["validation", "held-out test"]).T.round(3))

# %% [markdown]
# ## Its features, validated
# FID compares feature statistics, so its features must see what differs: two halves of the same true
# images should be near 0, and known degradations (box blur, Gaussian noise) should give a larger
# FID the stronger they are. On the judge pool's held-out true images (synthetic) or the validation
# clips' images (real).

# %%
features = scoring.feature_check(P, judge)
display(pd.Series(features, name="FID's features").to_frame())

# %% [markdown]
# ## FID (separated images) and IS (all), per combination

# %%
truth = report.load_images_for(cat, test, size)  # the true images of each tuple's two sources
table = scoring.fid_is(P, judge, test, images, truth, features)  # also writes metrics_fid_is.json
table

# %% [markdown]
# ## What this run shows

# %%
sep = table.loc["separated_foreground"]
print(
    f"Separated foreground images, FID against the true foreground images (lower is closer; mean ± std over "
    f"the combinations): Sound2Scene {sep.loc['Sound2Scene', 'FID']}, AV-GAS A2A {sep.loc['A2A', 'FID']}, "
    f"true image features {sep.loc['reference: true image features', 'FID']}. FID's features "
    f"{'pass' if features['passed'] else 'FAIL'} their check (near 0 on true halves, growing with blur and "
    f"noise); notebook 08 has the pooled values."
)

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
# # 10. Beyond two sources: slots without labels, three sources, unseen pairings
#
# The paper's conclusion names its own next steps: *"extend the model to more than two audio sources
# for generality, since the current method is limited to background/foreground distinctions"*, and
# *"explore different automated strategies for assigning audio sources to locations in the
# embedding, similar to what is done in music separation"*. This chapter measures three questions
# with the same separator, generator and judges as the rest of the book.
#
# **1. Does the fg/bg label matter?** The paper's separator reads slot 1 as the foreground and slot
# 2 as the background: the order is a label. A permutation-invariant (PIT) separator drops it: for
# each tuple $i$, the slots are matched to the sources by the assignment $\pi_i$ that fits best,
#
# $$\pi_i = \arg\min_{\pi} \sum_{s=1}^{K} \sum_{X \in \{A, V\}} \left\| \frac{h_{i,s}}{\|h_{i,s}\|} - \frac{t^X_{i,\pi(s)}}{\|t^X_{i,\pi(s)}\|} \right\|, \qquad
# \mathcal{L}_\text{PIT} = \sum_{s=1}^{K} l\big(h_{s}, t_{\pi(s)}\big) + l\big(t_{\pi(s)}, h_{s}\big)$$
#
# ($X$ runs over the alignment's target kinds; $l$ is Eq. 1's InfoNCE with $-L_2$ logits, so with
# the fixed order $\pi = \mathrm{id}$ this is exactly Eq. 2 (A2A) or Eq. 3 (A2V).) The cost is local to the tuple: shuffling
# a tuple's sources shuffles its assignment with them. At evaluation, a PIT separator's slots are
# matched to the sources by the same assignment, on embeddings (never on a judge's output) — an
# *oracle* assignment, as speech separation evaluates PIT, that uses the true sources' embeddings.
# Its fixed-order twin gets no such help, so PIT and fixed order are compared as claims on the
# **mixed image** only (a blend of all slots, whatever their order: for two slots at λ = 0.5 and for
# K slots at equal weights the assignment does not change it); PIT's separated scores are shown, not
# claimed.
#
# **2. Three sources.** `sources: 3` mixes one background with two of its Table 4 foregrounds
# (prompts distinct, so a judge can tell them apart); the separator has 3 × 2048 outputs, the mixed
# image is $G(z, \tfrac13(h_1 + h_2 + h_3))$, and the scores are CRS$_3$ (Eq. 5 with every one of
# the 3 classes found), R@3* (all 3 classes among CLIP's top 3) and R@1 per slot. As with two
# sources, $G$ and $f_V$ learn what a many-class scene looks like from *other* groupings only: a
# background with foregrounds that are not its own (so an evaluated foreground pair may appear
# side by side over another background, as an evaluated foreground appears over other backgrounds
# in the two-source protocol, but never a scene holding an evaluated (foreground, background) pair).
# The judges are checked first on true 3-class scenes (recall) and on single-class images and
# 2-class part scenes of each group (false success: part of a group scored as all of it).
#
# **3. Unseen pairings.** Pairs of the run's classes never mixed in training (nor shown to $G$ and
# $f_V$: `protocol.generator_pairs` leaves them out; the judges were checked on them): can the
# separator "imagine unrealistic scenes" it never heard together?

# %% tags=["parameters"]
params_file = "params/quick.yaml"  # a params file (relative to the project root); papermill passes the run's

# %%
import pandas as pd
from IPython.display import Markdown, display

from avgas import checkpoints, data, judges, losses, more_sources, params, report, results, unseen_pairings

P = params.from_notebook(globals())
cat = data.catalogue(P)
collected = results.collect(P)

# %% [markdown]
# ## The code
# The assignment, and the loss taken under it (`losses.separator_loss` with a `-PIT` alignment):

# %%
report.show_source(losses.assignment_cost, losses.best_assignment, losses.separator_loss)

# %% [markdown]
# ## 1. Fixed order against PIT
# This run's rows (mean over the combinations ± std over the separator seeds), then the run's claims
# that compare slot orders, each under the rule of Tables 1–3 (the book's
# {ref}`reproduction notes <when-a-claim-is-told>`): its judge and check, the difference with its
# interval over seeds and test clips, Holm-corrected over its table, and the verdict.

# %%
display(more_sources.method_table(collected, more_sources.pit_rows(collected)))
results.claims_frame(more_sources.pit_claims(collected))

# %% [markdown]
# Which order does a PIT separator settle on? Its slots carry no label, so the share of validation
# tuples whose assignment is the paper's (foreground first) says whether it found a convention of
# its own (near 1 or near 0 for two sources) or none (near 1/K!).

# %%
fa, fv, G = checkpoints.load_parts(P)
tuples = data.make_tuples(cat, P)
order = more_sources.slot_orders(P, cat, tuples, fa, fv, collected)
if order:
    display(pd.DataFrame(order).T.rename_axis("PIT separator").round(2))
else:
    print("this run trains no PIT separator (add A2A-PIT to `alignments`)")

# %% [markdown]
# ## 2. Three sources
# The run with `sources: 3` beside this one (`python -m avgas run <params> --sweep sources=3` makes
# `<name>-sources3/`), or this run when it is one: its judges' checks, its table, and its own claims
# under the same rule (told by its notebook 08).

# %%
k3_dir, k3 = more_sources.load_sibling(P.run_dir, 3)
if k3 is None:
    print(
        f"no finished three-source run beside this one: make it with "
        f"python -m avgas run <this run's params> --sweep sources=3 (it goes to {P.name}-sources3/)"
    )
else:
    display(
        Markdown(
            f"From `{k3_dir.name}`: {len(k3['protocol']['evaluated_pairs'])} groups of 3 classes, "
            f"{k3['protocol']['separator seeds']} separator seed(s)."
        )
    )
    display(results.check_table(k3))
    display(more_sources.method_table(k3))
    display(results.claims_frame(more_sources.k_claims(k3)))

# %% [markdown]
# One held-out mixture of three sources: the true images, then each method's three separated images
# and its mixed image.

# %%
if k3 is not None:
    cat3, test3, images3, shown = more_sources.k_images(k3_dir)
    first = int(test3.index[0])
    fig = report.separated_figure(cat3, test3, images3, first, shown, title=test3.loc[first, "combination"])

# %% [markdown]
# ## 3. Unseen pairings
# The run's separators on test mixtures of pairs never mixed in training, scored by the run's
# judges (checked on these pairs too), beside the same methods on the usual test pairs; then the
# claims on the unseen tuples, under the same rule (their clips resampled as clusters).

# %%
unseen = None
if P.unseen():
    clip = judges.clip.judge(P, cat, G.resolution, progress=False)
    detector = judges.detector.judge(P, cat, G.resolution, progress=False, clip=clip)
    unseen = unseen_pairings.scores(P, cat, tuples, fa, fv, G, detector, clip)
    unseen["claims"] = unseen_pairings.claim_records(unseen, collected.get("checks", {}))
    display(
        Markdown(f"{unseen['tuples']} tuples of {len(unseen['pairs'])} unseen pairings: " + ", ".join(unseen["pairs"]))
    )
    display(unseen_pairings.table(collected, unseen))
    display(results.claims_frame(unseen["claims"]))
else:
    print("this run has no unseen pairings (unseen_pairs: 0, or more than two sources)")

# %% [markdown]
# The slot orders and the unseen pairings' scores and claims go to the run's `beyond.json`, and
# `results.json` is written again to carry them.

# %%
collected = results.save_beyond(P, order, unseen)

# %% [markdown]
# ## What this run shows

# %%
lines = more_sources.findings(collected, order, k3) + unseen_pairings.findings(unseen)
print("\n".join(lines) or "nothing to compare in this run")

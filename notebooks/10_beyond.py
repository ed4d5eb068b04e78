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

from avgas import beyond, checkpoints, data, judges, losses, params, report, results, train

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
# This run's rows (mean over the combinations ± std over the separator seeds), and the paired
# intervals over the test tuples: each PIT separator against its fixed-order twin, and both against
# Sound2Scene.

# %%
pit = [m for m in results.PIT_METHODS if m in collected["results"].get("mixed", {})]
twins = [m.removesuffix("-PIT") for m in pit]
display(beyond.method_table(collected, ["Sound2Scene", *[m for pair in zip(twins, pit) for m in pair]]))
pit_claims = beyond.claims_table(collected, [f"{m} - {m.removesuffix('-PIT')}" for m in pit]
                                 + [f"{m} - Sound2Scene" for m in (*twins, *pit)])
pit_claims

# %% [markdown]
# Which order does a PIT separator settle on? Its slots carry no label, so the share of validation
# tuples whose assignment is the paper's (foreground first) says whether it found a convention of
# its own (near 1 or near 0 for two sources) or none (near 1/K!).

# %%
fa, fv, G = checkpoints.load_parts(P)
tuples = data.make_tuples(cat, P)
order = {}
if pit:
    val = train.separator_data(P, cat, tuples, "val", fa, fv, progress=False)
    order = {m: beyond.slot_order(P, val, m) for m in pit}
    display(pd.DataFrame(order).T.rename_axis("PIT separator").round(2))
else:
    print("this run trains no PIT separator (add A2A-PIT to `alignments`)")

# %% [markdown]
# ## 2. Three sources
# The run with `sources: 3` beside this one (`python -m avgas run <params> --sweep sources=3` makes
# `<name>-sources3/`), or this run when it is one.

# %%
import json

k3_dir = beyond.sibling(P.run_dir, 3)
k3 = json.loads((k3_dir / "results.json").read_text()) if k3_dir else None
if k3 is None:
    print(f"no finished three-source run beside this one: make it with "
          f"python -m avgas run <this run's params> --sweep sources=3 (it goes to {P.name}-sources3/)")
else:
    display(Markdown(f"From `{k3_dir.name}`: {len(k3['protocol']['evaluated_pairs'])} groups of 3 classes, "
                     f"{k3['protocol']['separator seeds']} separator seed(s)."))
    display(results.judge_table(k3))
    display(beyond.method_table(k3))

# %% [markdown]
# The judges above were checked on true 3-class scenes (recall) and on single-class images of a
# group's classes (false success) first; a column whose judge is not trusted is read with care.
# Paired intervals on the three-source test tuples:

# %%
k3_claims = pd.DataFrame()
if k3 is not None:
    names = ["A2A - Sound2Scene", "A2V - Sound2Scene", "A2A+A2V - Sound2Scene", "A2A-PIT - Sound2Scene",
             "A2A-PIT - A2A", "A2A - control: f_A fine-tuned on mixtures"]
    k3_claims = beyond.claims_table(k3, names)
    display(k3_claims)

# %% [markdown]
# One held-out mixture of three sources: the true images, then each method's three separated images
# and its mixed image.

# %%
if k3 is not None:
    from avgas import generate

    P3 = params.load(k3_dir / "params.yaml", {"name": k3_dir.name, "run_root": str(k3_dir.parent)})
    cat3 = data.catalogue(P3)
    test3, images3, _ = generate.load_run(P3, cat3)
    shown = [m for m in ("A2A", "A2A-PIT", "reference: true image features", "Sound2Scene")
             if ("mixed", m) in images3]
    fig = beyond.separated_figure(cat3, test3, images3, int(test3.index[0]), shown,
                                  title=test3.loc[test3.index[0], "combination"])

# %% [markdown]
# ## 3. Unseen pairings
# The run's separators on test mixtures of pairs never mixed in training, scored by the run's
# judges, beside the same methods on the usual test pairs; then paired intervals on the unseen
# tuples.

# %%
unseen = None
if P.unseen():
    size = G.resolution
    clip = judges.recall_judge(P, cat, size, progress=False)
    detector = judges.crs_judge(P, cat, size, progress=False, clip=(clip.model, clip.tokenizer))
    unseen = beyond.unseen_scores(P, cat, tuples, fa, fv, G, detector, clip)
    display(Markdown(f"{unseen['tuples']} tuples of {len(unseen['pairs'])} unseen pairings: "
                     + ", ".join(unseen["pairs"])))
    display(beyond.unseen_table(collected, unseen))
    unseen_claims = beyond.unseen_claims(unseen)
    # the run's judges, checked on the unseen pairings too (protocol.evaluated_pairs)
    display(beyond.claims_table({"paired_ci": unseen_claims}, list(unseen_claims), collected["judges"]))
else:
    print("this run has no unseen pairings (unseen_pairs: 0, or more than two sources)")

# %%
record = {"slot order (share of validation tuples in the paper's order)": order}
if unseen is not None:
    record["unseen"] = {k: unseen[k] for k in ("tuples", "pairs", "per_tuple")}
    record["unseen"]["paired_ci"] = unseen_claims
beyond.save(P, record)
results.write(P, results.collect(P))  # results.json now carries them too

# %% [markdown]
# ## What this run shows

# %%
lines = []
for _, r in pit_claims[pit_claims["comparison"].str.endswith("-PIT - A2A")].iterrows():
    lines.append(f"{r['comparison']} on {r['task']} {r['metric']}: {r['difference [95% CI]']} ({r['verdict']})")
for m, v in order.items():
    lines.append(f"{m}: the paper's slot order in {min(v.values()):.0%}-{max(v.values()):.0%} of validation "
                 "tuples over seeds")
if len(k3_claims):
    for _, r in k3_claims[k3_claims["task"] == "mixed"].iterrows():
        lines.append(f"three sources, {r['comparison']} on mixed {r['metric']}: {r['difference [95% CI]']} "
                     f"({r['verdict']})")
if unseen is not None:
    for name, tasks in unseen_claims.items():
        ci = tasks.get("mixed", {}).get("CRS")
        if ci:
            lines.append(f"unseen pairings, {name} on mixed CRS: {ci['difference']:+.3f} "
                         f"[{ci['ci95'][0]:+.3f}, {ci['ci95'][1]:+.3f}]")
print("\n".join(lines) or "nothing to compare in this run")

"""Unseen pairings (notebook 10): the run's separators on pairs never mixed in training.

`unseen_pairs` (two sources) sets aside pairs of the run's classes that are never mixed in
training, nor shown to G and f_V (protocol.generator_pairs leaves them out); the run's judges were
checked on them too (protocol.evaluated_pairs). Can the separator "imagine" scenes it never heard
together? The run's methods are scored on those pairs' test mixtures as the test tuples are in
notebooks 06-07, and each claim is told under the rule of Tables 1-3 (results.claim_row, tell):
the run's judges' checks, seeds then clips as clusters, Holm over a task's claims.

These are not the paper's "unrealistic" combinations (the five over underwater bubbling, Table 4),
which are trained on like the rest (Sec. 4.1): Tables 1-3 report those apart (results.by_kind).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from avgas import generate, judges, results, scoring, separators, slots
from avgas.params import Params

NOISE_OFFSET = 2000  # the unseen tuples' noise seeds, apart from the test (0) and validation (1000) ones

# The claims on unseen pairings: (method, baseline)
CLAIMS = (
    ("A2A", "Sound2Scene"),
    ("A2A-PIT", "Sound2Scene"),
    ("A2A-PIT", "A2A"),
    ("A2A", results.CONTROL),
)


def _tasks() -> list[tuple[str, str]]:
    return [("mixed", "CRS"), ("mixed", "R@2*"), *((t, "R@1") for t in slots.separated_tasks(2))]


def scores(p: Params, cat: pd.DataFrame, tuples: pd.DataFrame, fa, fv, G, crs_judge, recall_judge) -> dict:
    """The run's methods on the unseen pairings' test mixtures: per (task, method), CRS and R@K per
    tuple (every seed), as the test tuples are scored in notebooks 06-07; with the tuples' clips
    (scoring.clusters), which the claims resample."""
    d = separators.separator_data(p, cat, tuples, "unseen", fa, fv, progress=False)
    emb, _ = generate.conditions(p, d, fa)
    images = generate.images_for(G, emb, p.seed + NOISE_OFFSET)
    want = judges.wanted(d.tuples)
    out: dict = {
        "tuples": len(d.mix),
        "pairs": sorted(set(d.tuples["combination"])),
        "clusters": scoring.clusters(d.tuples),
        "per_tuple": {},
    }
    for (task, method), imgs in images.items():
        rec = out["per_tuple"].setdefault(task, {}).setdefault(method, {})
        rec["CRS"] = [float(x) for x in crs_judge.hits(imgs, want[task])]
        rec[slots.recall_name(2, task)] = [float(x) for x in recall_judge.hits(imgs, want[task])]
    return out


def _by_seed(per_tuple: dict, method: str, metric: str) -> list | None:
    """A method's per-tuple successes as a list per seed ('A2A', 'A2A#1', ... pooled)."""
    seeds = [v[metric] for m, v in sorted(per_tuple.items()) if results.split_method(m)[0] == method and metric in v]
    return seeds or None


def table(collected: dict, unseen: dict) -> pd.DataFrame:
    """Mean success per method on the usual test pairs (this run's Tables 1-3) and on the unseen
    pairings, for the mixed image's CRS and R@2* and the separated images' R@1."""
    rows = {}
    seen = collected.get("per_tuple", {})
    for task, metric in _tasks():
        there = {results.split_method(m)[0] for m in unseen["per_tuple"].get(task, {})}
        for m in [m for m in results.METHODS if m in seen.get(task, {}) or m in there]:
            a = seen.get(task, {}).get(m, {}).get(metric)
            b = _by_seed(unseen["per_tuple"].get(task, {}), m, metric)
            rows[(m, f"{metric} ({task.replace('separated_', '')})")] = {
                "usual test pairs": f"{np.mean(a):.2f}" if a else "–",
                "unseen pairings": f"{np.mean(b):.2f}" if b else "–",
            }
    return pd.DataFrame(rows).T.rename_axis(["method", "metric"])


def claim_records(unseen: dict, checks: dict, n: int = results.BOOTSTRAP_REPLICATES, alpha: float = 0.05) -> list:
    """Each claim of CLAIMS on the unseen tuples under the rule of Tables 1-3: its judge's check
    (`checks`: the run's judges, checked on the unseen pairings too), the difference with a
    bootstrap over seeds and the unseen tuples' clips, Holm over the claims of a task, the
    corrected interval and the verdict. The control has no separated images, and PIT's are
    oracle-matched (core.separator.matched): their separated comparisons are not claimed."""
    pt, rows, reps = unseen["per_tuple"], [], []
    for m, base in CLAIMS:
        for task, metric in _tasks():
            if task != "mixed" and (base.startswith("control") or m.endswith("-PIT")):
                continue
            a, b = _by_seed(pt.get(task, {}), m, metric), _by_seed(pt.get(task, {}), base, metric)
            if not (a and b):
                continue
            row, r = results.claim_row(checks, task, metric, a, b, unseen.get("clusters"), n, alpha)
            where = task.replace("_", "-")
            rows.append(
                {
                    "claim": f"{m} beats {base} on {where} {metric} (unseen pairings)",
                    "method": m,
                    "baseline": base,
                    **row,
                }
            )
            reps.append(r)
    results.tell(rows, reps, "task", alpha)
    return rows


def findings(unseen: dict | None) -> list[str]:
    """What this run shows on the unseen pairings, one line per mixed-image claim, from its record."""
    if unseen is None:
        return []
    lines = []
    for r in unseen.get("claims", []):
        if r["task"] == "mixed":
            ci = r.get("corrected ci") or r.get("ci95")
            interval = f"{r['difference']:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}]: " if ci else ""
            lines.append(f"{r['claim']}: {interval}{r['verdict']}")
    return lines

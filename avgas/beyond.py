"""Beyond the paper's two sources (notebook 10): K sources, slots without labels, unseen pairings.

The paper closes with two next steps: "extend the model to more than two audio sources" and
"explore different automated strategies for assigning audio sources to locations in the
embedding". This module reads what a run measured for them:

- **fixed order vs PIT** (`-PIT` alignments, `losses.separator_loss`): Tables 1-3 rows and paired
  claims of the run itself, and how often a PIT separator's assignment happens to be the paper's
  order (its slots have no label, so any convention it settles on is its own);
- **K sources**: the run with `sources: K` beside this one (`<name>-sources<K>`, made by
  ``python -m avgas run <params> --sweep sources=3``) or this run when it is one;
- **unseen pairings** (`unseen_pairs`, two sources): the run's separators on test mixtures of
  pairs that were never mixed in training, nor shown to G and f_V, scored by the run's judges
  (which were checked on those pairs too), beside the same methods on the usual test pairs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from avgas import metrics, paths, slots
from avgas.params import Params
from avgas.runfolder import RunFolder

NOISE_OFFSET = 2000  # the unseen tuples' noise seeds, apart from the test (0) and validation (1000) ones


def sibling(run_dir: Path, k: int) -> Path | None:
    """The finished run with `sources: k` that belongs to `run_dir`: the run itself when it has k
    sources, else `<name>-sources<k>` beside it; None when there is none (with results.json)."""
    import yaml

    run_dir = Path(run_dir)
    for d in (RunFolder(run_dir), RunFolder(run_dir).sibling(f"-sources{k}")):
        if d.params.is_file() and d.results.is_file():
            if int((yaml.safe_load(d.params.read_text()) or {}).get("sources", 2)) == k:
                return d.root
    return None


def _cell(v) -> str:
    return f"{v[0]:.2f} ± {v[1]:.2f}" if v else "–"


def method_table(collected: dict, methods=None) -> pd.DataFrame:
    """A row per method: the mixed image's CRS_K and R@K*, each separated slot's R@1 (mean over the
    combinations ± std over seeds)."""
    from avgas import results

    k = results.sources_of(collected)
    res = collected.get("results", {})
    cols = [("mixed", slots.crs_name(k)), ("mixed", slots.recall_name(k, "mixed"))]
    cols += [(t, "R@1") for t in slots.separated_tasks(k)]
    methods = methods or [m for m in results.METHODS if m in res.get("mixed", {})]
    rows = {}
    for m in methods:
        rows[m] = {
            f"{metric} ({task.replace('separated_', '')})": _cell(res.get(task, {}).get(m, {}).get(metric))
            for task, metric in cols
        }
    return pd.DataFrame(rows).T


def claims_table(collected: dict, names: list[str], judged_by: dict | None = None) -> pd.DataFrame:
    """The paired claims `names` ('<method> - <baseline>') of a run: per task and metric, the mean
    difference over test tuples, its 95% interval and the verdict, which is 'cannot tell (judge not
    trusted)' when the metric's judge failed its held-out check (`judged_by`: the judges' checks,
    by default the run's own)."""
    from avgas import judges, results

    checks = collected.get("judges", {}) if judged_by is None else judged_by
    rows = []
    for name in names:
        for task, ms in collected.get("paired_ci", {}).get(name, {}).items():
            for metric, ci in ms.items():
                trusted = judges.trusted(checks.get(results.judge_of(metric), {}))
                rows.append(_claim_row(name, task, metric, ci, trusted))
    return pd.DataFrame(rows, columns=["comparison", "task", "metric", "difference [95% CI]", "units", "verdict"])


def _claim_row(name: str, task: str, metric: str, ci: dict, trusted: bool) -> dict:
    return {
        "comparison": name,
        "task": task,
        "metric": metric,
        "difference [95% CI]": f"{ci['difference']:+.3f} [{ci['ci95'][0]:+.3f}, {ci['ci95'][1]:+.3f}]",
        "units": f"{ci['units']} × {ci['seeds']}",
        "verdict": metrics.verdict(ci) if trusted else "cannot tell (judge not trusted)",
    }


# ------------------------------------------------------------------ the order PIT settles on


def slot_order(p: Params, d, alignment: str = "A2A-PIT") -> dict:
    """Per seed of a PIT separator, on one split's tuples `d` (a train.SeparatorData): the share of
    tuples whose assignment is the paper's order (foreground(s) first, background last). Near 1 or
    near 0 (for two sources): the separator settled on a convention by itself; near 1/K!: none."""
    from avgas import losses, train

    out = {}
    for a, r in train.trained_models(p):
        if a != alignment:
            continue
        hs = train.separate(train.load_separator(p, a, replica=r), d.mix)
        perm = losses.assign(hs, d.targets, a)
        identity = torch.arange(d.sources)
        out[train.method_name(a, r)] = round(float((perm == identity).all(1).float().mean()), 4)
    return out


# ------------------------------------------------------------------ unseen pairings


def unseen_scores(p: Params, cat: pd.DataFrame, tuples: pd.DataFrame, fa, fv, G, crs_judge, recall_judge) -> dict:
    """The run's methods on the unseen pairings' test mixtures: per (task, method), CRS and R@K per
    tuple (every seed), as the test tuples are scored in notebooks 06-07."""
    from avgas import generate, judges, train

    d = train.separator_data(p, cat, tuples, "unseen", fa, fv, progress=False)
    emb, _ = generate.conditions(p, d, fa)
    images = generate.images_for(G, emb, p.seed + NOISE_OFFSET)
    want = judges.wanted(d.tuples)
    out: dict = {"tuples": len(d.mix), "pairs": sorted(set(d.tuples["combination"])), "per_tuple": {}}
    for (task, method), imgs in images.items():
        rec = out["per_tuple"].setdefault(task, {}).setdefault(method, {})
        rec["CRS"] = [float(x) for x in crs_judge.hits(imgs, want[task])]
        rec[slots.recall_name(2, task)] = [float(x) for x in recall_judge.hits(imgs, want[task])]
    return out


def _by_seed(per_tuple: dict, method: str, metric: str) -> list | None:
    """A method's per-tuple successes as a list per seed ('A2A', 'A2A#1', ... pooled)."""
    from avgas.results import split_method

    seeds = [v[metric] for m, v in sorted(per_tuple.items()) if split_method(m)[0] == method and metric in v]
    return seeds or None


def unseen_table(collected: dict, unseen: dict) -> pd.DataFrame:
    """Mean success per method on the usual test pairs (this run's Tables 1-3) and on the unseen
    pairings, for the mixed image's CRS and R@2* and the separated images' R@1."""
    from avgas import results

    rows = {}
    seen = collected.get("per_tuple", {})
    for task, metric in (("mixed", "CRS"), ("mixed", "R@2*"), *((t, "R@1") for t in slots.separated_tasks(2))):
        for m in [m for m in results.METHODS if m in seen.get(task, {}) or m in _methods(unseen, task)]:
            a = seen.get(task, {}).get(m, {}).get(metric)
            b = _by_seed(unseen["per_tuple"].get(task, {}), m, metric)
            rows[(m, f"{metric} ({task.replace('separated_', '')})")] = {
                "usual test pairs": f"{np.mean(a):.2f}" if a else "–",
                "unseen pairings": f"{np.mean(b):.2f}" if b else "–",
            }
    return pd.DataFrame(rows).T.rename_axis(["method", "metric"])


def _methods(unseen: dict, task: str) -> set:
    from avgas.results import split_method

    return {split_method(m)[0] for m in unseen["per_tuple"].get(task, {})}


UNSEEN_CLAIMS = [
    ("A2A", "Sound2Scene"),
    ("A2A-PIT", "Sound2Scene"),
    ("A2A-PIT", "A2A"),
    ("A2A", "control: f_A fine-tuned on mixtures"),
]


def unseen_claims(unseen: dict) -> dict:
    """Paired intervals on the unseen pairings' tuples: '<method> - <baseline>' -> task -> metric."""
    out: dict = {}
    pt = unseen["per_tuple"]
    for m, base in UNSEEN_CLAIMS:
        for task, metric in (("mixed", "CRS"), ("mixed", "R@2*"), *((t, "R@1") for t in slots.separated_tasks(2))):
            if task != "mixed" and (base.startswith("control") or m.endswith("-PIT")):
                continue  # the control has no separated images; PIT's are oracle-matched (train.matched)
            a, b = _by_seed(pt.get(task, {}), m, metric), _by_seed(pt.get(task, {}), base, metric)
            if a and b:  # a method without seeds (one row) is paired with every seed of the other
                out.setdefault(f"{m} - {base}", {}).setdefault(task, {})[metric] = metrics.paired_ci(a, b)
    return out


def save(p: Params, record: dict) -> None:
    """Write notebook 10's numbers to <run>/beyond.json (results.collect carries them)."""
    paths.atomic_write_text(p.folder.beyond, json.dumps(record, indent=1))


# ------------------------------------------------------------------ the figure


def separated_figure(cat: pd.DataFrame, tuples: pd.DataFrame, images: dict, i: int, methods: list[str], title: str):
    """One mixture of K sources: its true images, then per method a row of its K separated images
    and its mixed image (Sound2Scene: its one image of the mix)."""
    from avgas import report

    k = slots.count(tuples)
    res = next(iter(images.values())).shape[1]
    truth = report.load_images_for(cat, tuples.loc[[i]], res)
    blank = torch.full((res, res, 3), 255, dtype=torch.uint8)
    rows = [[truth[(x, i)] for x in slots.prefixes(k)] + [blank]]
    names = ["true images"]
    for m in methods:
        seps = [images[(t, m)][i] if (t, m) in images else blank for t in slots.separated_tasks(k)]
        rows.append(seps + [images[("mixed", m)][i]])
        names.append(m)
    cols = [f"{slot.replace('_', ' ')}" for slot in slots.slot_names(k)] + ["mixed image"]
    return report.image_grid(rows, names, cols, title=title, cell=1.3)

"""More than the paper's two labelled slots (notebook 10): slots without labels (PIT), K sources.

The paper closes with two next steps: "extend the model to more than two audio sources" and
"explore different automated strategies for assigning audio sources to locations in the
embedding". This module reads what a run measured for them:

- **fixed order vs PIT** (`-PIT` alignments, `losses.separator_loss`): Tables 1-3 rows and the
  claims of the run itself (results.claim_records), and how often a PIT separator's assignment
  happens to be the paper's order (its slots have no label, so any convention it settles on is its
  own);
- **K sources**: the run with `sources: K` beside this one (`<name>-sources<K>`, made by
  ``python -m avgas run <params> --sweep sources=3``) or this run when it is one, with the claims
  its own results.json holds.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import torch
import yaml

from avgas import data, generate, losses, params, results, separators, slots
from avgas.core import separator
from avgas.params import Params
from avgas.runfolder import RunFolder

# The claims notebook 10 shows of a three-source run (its own claims under the rule of Tables 1-3)
K_CLAIMS = (
    ("A2A", "Sound2Scene"),
    ("A2V", "Sound2Scene"),
    ("A2A+A2V", "Sound2Scene"),
    ("A2A-PIT", "Sound2Scene"),
    ("A2A-PIT", "A2A"),
    ("A2A", results.CONTROL),
)


def sibling(run_dir: Path, k: int) -> Path | None:
    """The finished run with `sources: k` that belongs to `run_dir`: the run itself when it has k
    sources, else `<name>-sources<k>` beside it; None when there is none (with results.json)."""
    run_dir = Path(run_dir)
    for d in (RunFolder(run_dir), RunFolder(run_dir).sibling(f"-sources{k}")):
        if d.params.is_file() and d.results.is_file():
            if int((yaml.safe_load(d.params.read_text()) or {}).get("sources", 2)) == k:
                return d.root
    return None


def load_sibling(run_dir: Path, k: int) -> tuple[Path | None, dict | None]:
    """(folder, results.json) of the k-source run belonging to `run_dir` (sibling), or (None, None)."""
    d = sibling(run_dir, k)
    return (d, json.loads(RunFolder(d).results.read_text())) if d else (None, None)


def _cell(v) -> str:
    return f"{v[0]:.2f} ± {v[1]:.2f}" if v else "–"


def method_table(collected: dict, methods=None) -> pd.DataFrame:
    """A row per method: the mixed image's CRS_K and R@K*, each separated slot's R@1 (mean over the
    combinations ± std over seeds)."""
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


# ------------------------------------------------------------------ fixed order against PIT


def pit_methods(collected: dict) -> list[str]:
    """The PIT separators a run trained (results.PIT_METHODS it has rows for)."""
    return [m for m in results.PIT_METHODS if m in collected.get("results", {}).get("mixed", {})]


def pit_rows(collected: dict) -> list[str]:
    """Sound2Scene, then each fixed-order separator beside its PIT twin: the rows of notebook 10's
    first table."""
    return ["Sound2Scene", *[m for pit in pit_methods(collected) for m in (pit.removesuffix("-PIT"), pit)]]


def pit_claims(collected: dict) -> list[dict]:
    """The run's claim records (results.claim_records: judge, check, corrected interval, verdict)
    that compare slot orders: each PIT separator against its fixed-order twin, and both against
    Sound2Scene, on the mixed image (PIT's separated images are oracle-matched, so not claimed)."""
    pit = pit_methods(collected)
    wanted = {(m, m.removesuffix("-PIT")) for m in pit}
    wanted |= {(m, "Sound2Scene") for m in (*pit, *(m.removesuffix("-PIT") for m in pit))}
    return [r for r in collected.get("claims") or [] if (r["method"], r["baseline"]) in wanted]


def k_claims(collected: dict) -> list[dict]:
    """A K-source run's own claim records (its results.json) for K_CLAIMS."""
    return [r for r in collected.get("claims") or [] if (r["method"], r["baseline"]) in K_CLAIMS]


def slot_order(p: Params, d, alignment: str = "A2A-PIT") -> dict:
    """Per seed of a PIT separator, on one split's tuples `d` (a separators.SeparatorData): the share of
    tuples whose assignment is the paper's order (foreground(s) first, background last). Near 1 or
    near 0 (for two sources): the separator settled on a convention by itself; near 1/K!: none."""
    out = {}
    for a, r in separators.trained_models(p):
        if a != alignment:
            continue
        hs = separator.separate(separators.load_separator(p, a, replica=r), d.mix)
        perm = losses.assign(hs, d.targets, a)
        identity = torch.arange(d.sources)
        out[separators.method_name(a, r)] = round(float((perm == identity).all(1).float().mean()), 4)
    return out


def slot_orders(p: Params, cat: pd.DataFrame, tuples: pd.DataFrame, fa, fv, collected: dict) -> dict:
    """slot_order of every PIT separator of the run on its validation tuples: separator -> seed ->
    share ({} when the run trains none)."""
    pit = pit_methods(collected)
    if not pit:
        return {}
    val = separators.separator_data(p, cat, tuples, "val", fa, fv, progress=False)
    return {m: slot_order(p, val, m) for m in pit}


FIGURE_METHODS = ("A2A", "A2A-PIT", "reference: true image features", "Sound2Scene")


def k_images(k_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict, list[str]]:
    """A K-source run's test tuples and generated images, for one mixture's figure
    (report.separated_figure): (catalogue, test tuples, {(task, method): images}, the methods of
    FIGURE_METHODS it has)."""
    pk = params.load(RunFolder(k_dir).params, {"name": k_dir.name, "run_root": str(k_dir.parent)})
    cat = data.catalogue(pk)
    test, images, _ = generate.load_run(pk, cat)
    return cat, test, images, [m for m in FIGURE_METHODS if ("mixed", m) in images]


# ------------------------------------------------------------------ what the run shows


def _said(r: dict) -> str:
    ci = r.get("corrected ci") or r.get("ci95")
    interval = f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else ""
    diff = f"{r['difference']:+.3f}{interval}: " if "difference" in r else ""
    return f"{r['claim']}: {diff}{r['verdict']}"


def findings(collected: dict, order: dict, k_collected: dict | None) -> list[str]:
    """What this run shows on slot order and K sources, one line each, computed from its records:
    each PIT-against-twin claim with its verdict, the share of validation tuples in the paper's
    slot order, and the K-source run's mixed-image claims."""
    lines = [_said(r) for r in pit_claims(collected) if r["baseline"] != "Sound2Scene"]
    for m, v in order.items():
        lines.append(
            f"{m}: the paper's slot order in {min(v.values()):.0%}-{max(v.values()):.0%} of validation "
            "tuples over seeds"
        )
    if k_collected is not None:
        k = results.sources_of(k_collected)
        lines += [f"{k} sources, {_said(r)}" for r in k_claims(k_collected) if r["task"] == "mixed"]
    return lines

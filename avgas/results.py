"""Tables 1-3: the run's numbers gathered from notebooks 05-07, beside the paper's.

``results.json`` mirrors the ``results`` section of paper-avgas.yaml:
task (mixed / separated_foreground / separated_background) -> method (Sound2Scene, A2A, A2V,
A2A+A2V, oracle) -> metric (FID, IS, CRS, R@2*, R@1) -> [mean, std] over the combinations, plus a
``ci95`` tree of the same shape ([low, high], bootstrap over combinations) and the judges'
validation scores under ``judges``.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from avgas import paper
from avgas.params import Params

SOURCES = {"metrics_fid_is.json": "scene classifier (FID/IS)", "metrics_crs.json": "detector (CRS)",
           "metrics_rk.json": "CLIP (R@K)"}
METHODS = ("Sound2Scene", "A2A", "A2V", "A2A+A2V", "oracle")
COLUMNS = {"mixed": ("IS", "CRS", "R@2*"), "separated_foreground": ("FID", "IS", "CRS", "R@1"),
           "separated_background": ("FID", "IS", "CRS", "R@1")}
TABLE_NAMES = {"mixed": "Table 1 (mixed images)", "separated_foreground": "Table 2 (separated: foreground)",
               "separated_background": "Table 3 (separated: background)"}


def collect(p: Params) -> dict:
    """Merge the metric files of a run into the results.json tree; missing files are skipped."""
    results, ci95, judges, per_combination = {}, {}, {}, {}
    for fname, judge in SOURCES.items():
        f = p.run_dir / fname
        if not f.is_file():
            continue
        d = json.loads(f.read_text())
        judges[judge] = d["judge"]
        for key, metrics in d["scores"].items():
            task, method = key.split("/", 1)
            for metric, v in metrics.items():
                results.setdefault(task, {}).setdefault(method, {})[metric] = v["mean_std"]
                ci95.setdefault(task, {}).setdefault(method, {})[metric] = v["ci95"]
                per_combination.setdefault(task, {}).setdefault(method, {})[metric] = v["per_combination"]
    return {"results": results, "ci95": ci95, "judges": judges, "per_combination": per_combination}


def write(p: Params, collected: dict) -> None:
    (p.run_dir / "results.json").write_text(json.dumps(
        {k: collected[k] for k in ("results", "ci95", "judges")}, indent=1))


def table(collected: dict, task: str) -> pd.DataFrame:
    """One of Tables 1-3: rows = methods, columns = metric (this run) and metric (paper)."""
    ours, ci, theirs = collected["results"].get(task, {}), collected["ci95"].get(task, {}), paper.results().get(task, {})
    rows = {}
    for m in METHODS:
        if m not in ours and m not in theirs:
            continue
        row = {}
        for metric in COLUMNS[task]:
            v = ours.get(m, {}).get(metric)
            c = ci.get(m, {}).get(metric)
            row[f"{metric} (here)"] = f"{v[0]:.2f} ± {v[1]:.2f}" if v and np.isfinite(v[0]) else "–"
            row[f"{metric} 95% CI"] = f"[{c[0]:.2f}, {c[1]:.2f}]" if c and np.isfinite(c[0]) else "–"
            t = theirs.get(m, {}).get(metric)
            row[f"{metric} (paper)"] = f"{t[0]:.2f} ± {t[1]:.2f}" if t else "–"
        rows[m] = row
    return pd.DataFrame(rows).T


def judge_table(collected: dict) -> pd.DataFrame:
    """Each judge's checks on held-out true scenes, flagged below 0.9."""
    rows = [{"judge": judge, "check": k, "score": round(x, 3), "flag": "below 0.9!" if x < 0.9 else "ok"}
            for judge, v in collected["judges"].items() for k, x in v.items() if k != "images"]
    return pd.DataFrame(rows, columns=["judge", "check", "score", "flag"]).set_index(["judge", "check"])


def _get(collected, task, method, metric):
    v = collected["results"].get(task, {}).get(method, {}).get(metric)
    return v[0] if v else float("nan")


def claims(collected: dict) -> pd.DataFrame:
    """The paper's claims and the issue's targets, checked against this run's numbers."""
    g = lambda *a: _get(collected, *a)  # noqa: E731
    crs_a2a, crs_s2s = g("mixed", "A2A", "CRS"), g("mixed", "Sound2Scene", "CRS")
    rows = [
        ("oracle mixed CRS >= 0.7 (the instrument can see both classes)", g("mixed", "oracle", "CRS") >= 0.7,
         f"{g('mixed', 'oracle', 'CRS'):.2f}"),
        ("oracle separated R@1 >= 0.8 (fg and bg)",
         min(g("separated_foreground", "oracle", "R@1"), g("separated_background", "oracle", "R@1")) >= 0.8,
         f"{g('separated_foreground', 'oracle', 'R@1'):.2f} / {g('separated_background', 'oracle', 'R@1'):.2f}"),
        ("A2A mixed CRS >= 2x Sound2Scene and >= +0.2", crs_a2a >= 2 * crs_s2s and crs_a2a - crs_s2s >= 0.2,
         f"{crs_a2a:.2f} vs {crs_s2s:.2f}"),
        ("A2A separated R@1 >= 0.6 (fg and bg)",
         min(g("separated_foreground", "A2A", "R@1"), g("separated_background", "A2A", "R@1")) >= 0.6,
         f"{g('separated_foreground', 'A2A', 'R@1'):.2f} / {g('separated_background', 'A2A', 'R@1'):.2f}"),
        ("paper: A2A beats A2V and A2A+A2V on separated foreground CRS",
         g("separated_foreground", "A2A", "CRS") > max(g("separated_foreground", "A2V", "CRS"),
                                                       g("separated_foreground", "A2A+A2V", "CRS")),
         " / ".join(f"{g('separated_foreground', m, 'CRS'):.2f}" for m in ("A2A", "A2V", "A2A+A2V"))),
        ("paper: every AV-GAS variant beats Sound2Scene on mixed CRS",
         all(g("mixed", m, "CRS") > crs_s2s for m in ("A2A", "A2V", "A2A+A2V")),
         " / ".join(f"{g('mixed', m, 'CRS'):.2f}" for m in ("Sound2Scene", "A2A", "A2V", "A2A+A2V"))),
    ]
    return pd.DataFrame(rows, columns=["claim", "holds here", "numbers"]).set_index("claim")

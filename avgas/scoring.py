"""Scoring the generated images and recording the scores: one function per metric file.

Notebooks 05-07 call these; `results.collect` reads what they write. The file layout lives here
only: ``{"judge": its held-out check, "scores": {"<task>/<method>": {metric: metrics.record(...)}},
"pooled": ...}``, one file per judge (FILES).
"""

from __future__ import annotations

import json

import pandas as pd
import torch

from avgas import metrics, paths, slots
from avgas.params import Params

FILES = {
    "metrics_fid_is.json": "scene classifier (FID/IS)",
    "metrics_crs.json": "detector (CRS)",
    "metrics_rk.json": "CLIP (R@K)",
}


def _recall_name(test: pd.DataFrame):
    k = slots.count(test)
    return lambda task: slots.recall_name(k, task)


def _write(p: Params, fname: str, judge: dict, scores: dict, **extra) -> None:
    assert fname in FILES, fname
    paths.atomic_write_text(p.run_dir / fname, json.dumps({"judge": judge, "scores": scores, **extra}, indent=1))


def _per_image_metric(p: Params, judge, test: pd.DataFrame, images: dict, name_of) -> tuple[dict, dict]:
    """A per-image success (CRS, R@K) per (task, method): per combination, and per test tuple for
    the paired claims. Returns (scores for the file, 'mean ± std' table cells)."""
    from avgas.judges import wanted

    want = wanted(test)
    scores, table = {}, {}
    for (task, method), imgs in images.items():
        hits = judge.hits(imgs, want[task])
        per = metrics.per_combination(test, lambda idx: float(hits[idx].mean()))
        scores[f"{task}/{method}"] = {name_of(task): metrics.record(per, p.seed, per_tuple=hits)}
        table[(task, method)] = "{:.2f} ± {:.2f}".format(*metrics.summary(per))
    return scores, table


def crs(p: Params, judge, test: pd.DataFrame, images: dict) -> pd.DataFrame:
    """CRS (Eq. 5) of every (task, method) with the detector `judge` (a DetectorJudge); writes
    metrics_crs.json. Returns the table: task columns, method rows, mean ± std over combinations."""
    name = slots.crs_name(slots.count(test))
    scores, table = _per_image_metric(p, judge, test, images, lambda task: name if task == "mixed" else "CRS")
    threshold = (
        "validation images of the judge pool"
        if p.world == "synthetic" and p.detector_conf is None
        else "params (detector_conf)"
        if p.detector_conf is not None
        else "YOLO-World's default"
    )
    check = {**judge.report["held-out"], "confidence threshold": judge.conf, "threshold chosen on": threshold}
    _write(p, "metrics_crs.json", check, scores)
    return pd.Series(table, name="CRS").unstack(0)


def recall(p: Params, judge, test: pd.DataFrame, images: dict) -> pd.DataFrame:
    """R@2* (mixed: both classes the top two prompts; R@K* for K sources) and R@1 (separated)
    with CLIP (a ClipJudge); writes metrics_rk.json. Returns the table."""
    name_of = _recall_name(test)
    scores, table = _per_image_metric(p, judge, test, images, name_of)
    _write(p, "metrics_rk.json", judge.report["held-out"], scores)
    return pd.Series({k: f"{name_of(k[0])} {v}" for k, v in table.items()}, name="R@K").unstack(0)


def fid_is(p: Params, judge, test: pd.DataFrame, images: dict, truth: dict) -> pd.DataFrame:
    """FID (separated images, against the true images of the same source) and IS, per
    combination, and on all test images of a method pooled (FID and IS are biased on small
    sets); writes metrics_fid_is.json. `truth`: ('fg'|'bg', tuple index) -> true uint8 image
    ('fg2', ... too for K sources: sources.prefixes)."""
    k = slots.count(test)
    true = {
        task: torch.stack([truth[(x, i)] for i in test.index])
        for task, x in zip(slots.separated_tasks(k), slots.prefixes(k))
    }
    scores, table = {}, {}
    lone = sorted(c for c, n in test["combination"].value_counts().items() if n < 2)
    if lone:  # FID compares two distributions: one image is not one; the pooled FID covers them
        import logging

        msg = (
            f"FID per combination is not computed for {len(lone)} combination(s) with a single test tuple "
            f"(e.g. {lone[0]}); they count in the pooled FID of every method"
        )
        logging.getLogger("avgas").warning(msg)
        print(msg)

    def fid_of(real, imgs, idx):
        return judge.fid(real[idx], imgs[idx]) if len(idx) > 1 else float("nan")

    for (task, method), imgs in images.items():
        per = {"IS": metrics.per_combination(test, lambda idx: judge.inception_score(imgs[idx]))}
        if task != "mixed":
            real = true[task]
            per["FID"] = metrics.per_combination(test, lambda idx: fid_of(real, imgs, idx))
        scores[f"{task}/{method}"] = {k: metrics.record(v, p.seed) for k, v in per.items()}
        table[(task, method)] = {m: "{:.2f} ± {:.2f}".format(*metrics.summary(v)) for m, v in per.items()}
    pooled = metrics.pooled(judge, images, true)
    _write(p, "metrics_fid_is.json", judge.report.get("held-out", {}), scores, pooled=pooled)
    return pd.DataFrame(table).T

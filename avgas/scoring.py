"""Scoring the generated images and recording the scores: one function per metric file.

Notebooks 05-07 call these; `results.collect` reads what they write. The file layout lives here
only: ``{"judge": its held-out check, "scores": {"<task>/<method>": {metric: metrics.record(...)}},
"pooled": ...}``, one file per judge (FILES; named by avgas.runfolder).
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import torch

from avgas import checkpoints, data, generate, judges, metrics, models, paper, paths, protocol, slots
from avgas.core import generation
from avgas.judges import DetectorJudge, wanted
from avgas.judges import checks as C
from avgas.params import Params

FILES = {  # RunFolder.metrics(what): metrics_<what>.json, and the judge that scores it
    "fid_is": "scene classifier (FID/IS)",
    "crs": "detector (CRS)",
    "rk": "CLIP (R@K)",
}


def _recall_name(test: pd.DataFrame):
    k = slots.count(test)
    return lambda task: slots.recall_name(k, task)


def floor_note(collected: dict, metric: str) -> str:
    """' (chance floor 0.053)' after R@2* (R@K*): what a right judge scores by chance on an image
    of one class (judges.checks.chance_floor); '' for other metrics."""
    floor = collected.get("chance floor", {}).get(metric)
    return f" (chance floor {floor:.3f})" if floor is not None else ""


def _write(p: Params, what: str, judge: dict, scores: dict, **extra) -> None:
    assert what in FILES, what
    paths.atomic_write_text(p.folder.metrics(what), json.dumps({"judge": judge, "scores": scores, **extra}, indent=1))


def _per_image_metric(p: Params, judge, test: pd.DataFrame, images: dict, name_of) -> tuple[dict, dict]:
    """A per-image success (CRS, R@K) per (task, method): per combination, and per test tuple for
    the paired claims. Returns (scores for the file, 'mean ± std' table cells)."""
    want = wanted(test)
    scores, table = {}, {}
    for (task, method), imgs in images.items():
        hits = judge.hits(imgs, want[task])
        per = metrics.per_combination(test, lambda idx: float(hits[idx].mean()))
        scores[f"{task}/{method}"] = {name_of(task): metrics.record(per, p.seed, per_tuple=hits)}
        table[(task, method)] = "{:.2f} ± {:.2f}".format(*metrics.summary(per))
    return scores, table


CHECK_NOISE_SEED = 7919  # G's noise for the judges' checks on G-made images: a stream of its own


def clusters(test: pd.DataFrame) -> list[list[str]]:
    """Per test tuple, its clips (source stems, in slot order): the clusters the claims' bootstrap
    resamples (metrics.clip_weights)."""
    return [list(r) for r in test[slots.stem_columns(test)].itertuples(index=False)]


def judge_checks(p: Params, judge) -> dict:
    """A judge (a DetectorJudge or a ClipJudge) counted for its claims' checks
    (judges.checks.claim_check) on the judge pool's held-out true images and on the images G makes
    from their f_V features, G(z, f_V(image)): single-class images and scenes of every evaluated
    pair, unseen pairings included. Computed here, outside the judges' cached training: the checks
    on G-made images depend on G, the judges must not. The real run has no judge pool with known
    classes: its checks are not measured (its claims read "cannot tell")."""
    if p.world != "synthetic":
        return {"note": "not measured: the real run has no judge pool of true scenes with known classes"}
    pool, pairs = protocol.judge_pool(p, "test"), protocol.evaluated_pairs(p)
    _, fv, G = checkpoints.load_parts(p)
    feats = models.encode_images(fv, pool.images, p.fv_image_size)
    z = generation.noise(len(feats), G.dim_z, CHECK_NOISE_SEED + p.seed)
    made = generation.from_unit(generation.sample(G, feats, z))
    prompts = paper.prompts()
    word_of = {c: prompts.get(c, c) for c in pool.classes}
    k = max(len(g) for g in pairs)
    out = {}
    for source, imgs in zip(C.SOURCES, (pool.images, made)):
        if isinstance(judge, DetectorJudge):
            out[source] = C.presence_evidence(pool, pairs, judge.words(imgs), word_of)
        else:
            out[source] = C.ranking_evidence(pool, pairs, judge.words(imgs, k), word_of, len(judge.vocabulary))
    return out


def crs(p: Params, judge, test: pd.DataFrame, images: dict, checks: dict | None = None) -> pd.DataFrame:
    """CRS (Eq. 5) of every (task, method) with the detector `judge` (a DetectorJudge); writes
    metrics_crs.json with the judge's claim checks (`checks`: judge_checks(p, judge), computed here
    when not given). Returns the table: task columns, method rows, mean ± std over combinations."""
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
    _write(p, "crs", check, scores, checks=checks or judge_checks(p, judge), clusters=clusters(test))
    return pd.Series(table, name="CRS").unstack(0)


def recall(p: Params, judge, test: pd.DataFrame, images: dict, checks: dict | None = None) -> pd.DataFrame:
    """R@2* (mixed: both classes the top two prompts; R@K* for K sources) and R@1 (separated)
    with CLIP (a ClipJudge); writes metrics_rk.json with the judge's claim checks (`checks`, as for
    crs) and R@2*'s chance floor. Returns the table."""
    name_of = _recall_name(test)
    scores, table = _per_image_metric(p, judge, test, images, name_of)

    k = slots.count(test)
    floor = {slots.recall_name(k, "mixed"): C.chance_floor(len(judge.vocabulary), k)}
    _write(
        p,
        "rk",
        judge.report["held-out"],
        scores,
        checks=checks or judge_checks(p, judge),
        clusters=clusters(test),
        **{"chance floor": floor},
    )
    note = {task: floor_note({"chance floor": floor}, name_of(task)) for task, _ in table}
    return pd.Series({k: f"{name_of(k[0])}{note[k[0]]} {v}" for k, v in table.items()}, name="R@K").unstack(0)


def feature_check(p: Params, judge) -> dict:
    """FID's features validated (judges.checks.feature_check) on the judge pool's held-out true
    images (synthetic), or on the run's validation clips' images (real): FID(true, true') and FID
    against blurred and noisy copies."""
    if p.world == "synthetic":
        images = protocol.judge_pool(p, "test").images
    else:
        cat = data.catalogue(p)
        val = cat[cat["split"] == "val"]
        images = data.load_images(cat, val["stem"].head(400), p.image_size)
    return C.feature_check(judge.fid, images, seed=p.seed)


def fid_is(
    p: Params, judge, test: pd.DataFrame, images: dict, truth: dict, features: dict | None = None
) -> pd.DataFrame:
    """FID (separated images, against the true images of the same source) and IS, per
    combination, and on all test images of a method pooled (FID and IS are biased on small
    sets); writes metrics_fid_is.json. `truth`: ('fg'|'bg', tuple index) -> true uint8 image
    ('fg2', ... too for K sources: sources.prefixes). `features`: feature_check(p, judge), computed
    here when not given."""
    k = slots.count(test)
    true = {
        task: torch.stack([truth[(x, i)] for i in test.index])
        for task, x in zip(slots.separated_tasks(k), slots.prefixes(k))
    }
    scores, table = {}, {}
    lone = sorted(c for c, n in test["combination"].value_counts().items() if n < 2)
    if lone:  # FID compares two distributions: one image is not one; the pooled FID covers them
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
    _write(
        p,
        "fid_is",
        judge.report.get("held-out", {}),
        scores,
        pooled=pooled,
        **{
            "pooled by kind": pooled_by_kind(judge, test, images, true, pooled),
            "feature check": features or feature_check(p, judge),
        },
    )
    return pd.DataFrame(table).T


def pooled_by_kind(judge, test: pd.DataFrame, images: dict, true: dict, pooled: dict) -> dict:
    """FID, IS and KID pooled over the test images of each kind of combination (Table 4: realistic,
    unrealistic; paper.kind_of), for Tables 1-3 per kind: kind -> metrics.pooled's record. A kind
    with one test image is left out (FID compares two distributions); on few images FID and IS are
    biased, as on any small set."""
    kind = test["combination"].map(paper.kind_of).to_numpy()
    out = {}
    for k in paper.KINDS:
        idx = np.flatnonzero(kind == k)
        if len(idx) == len(test):
            out[k] = pooled  # every combination is of this kind: the whole set
        elif len(idx) > 1:
            sub = torch.as_tensor(idx)
            out[k] = metrics.pooled(judge, {x: v[sub] for x, v in images.items()}, {t: v[sub] for t, v in true.items()})
    return out


def add_checks(p: Params, progress: bool = False) -> list[str]:
    """Add the claim checks, clip clusters and chance floor to the metric files of a run scored
    before they existed (the scores are kept as they are); returns the files changed."""
    cat = data.catalogue(p)
    test, _, size = generate.load_run(p, cat)
    changed = []
    for what, make in (("crs", judges.detector.judge), ("rk", judges.clip.judge)):
        f = p.folder.metrics(what)
        if not f.is_file():
            continue
        d = json.loads(f.read_text())
        if "checks" in d and "clusters" in d:
            continue
        judge = make(p, cat, size, progress)
        d.update(checks=judge_checks(p, judge), clusters=clusters(test))
        if what == "rk":
            k = slots.count(test)
            d["chance floor"] = {slots.recall_name(k, "mixed"): C.chance_floor(len(judge.vocabulary), k)}
        paths.atomic_write_text(f, json.dumps(d, indent=1))
        changed.append(f.name)
    return changed

"""Every instrument setting chosen on validation data, by a criterion that uses no separator.

The instrument of the synthetic world (the stand-in generator G, the detector, CLIP and the scene
classifier) must not be shaped by the method it measures, nor by the test set. So its settings are
chosen here, once per params file, and written to a record beside it
(``params/<name>.selection.json``) that ``tests/test_selection.py`` ties to the params file:

| setting | tried on | criterion (higher is better; a tie goes to the cheaper candidate) |
|---|---|---|
| ``detector_epochs`` | the judge pool's validation images | the detector's lowest recall minus its false success (its threshold chosen on the same images) |
| ``clip_steps`` | the judge pool's validation images | CLIP's lowest recall minus its false success |
| ``classifier_steps`` | the judge pool's validation images | the classifier's lowest recall minus its false success |
| ``g_steps``, ``g_blend_share`` (jointly) | G's own validation pool: true two-class scenes of the *generator pairs* | G's two-class rate: the share of G(z, f_V(scene)) in which the chosen detector finds both classes; the cheapest G not worse than the best beyond its interval (below) |
| ``stand_in_sources`` | G's validation pools of two- and three-source runs | one set of stand-ins for both sizes (``[2, 3]``) against each size's own (``null``): the shared G's rate on each size's pool, paired with the own G's; shared when neither interval excludes 0 |

G is the instrument's dearest part (half of a default run's time), and fewer steps are a cut of
what is computed. So G's choice is not the bare highest rate: every candidate scores the same scenes
with the same noise z, and the cheapest candidate whose paired 95% bootstrap interval of
(candidate - best) over the scenes still holds 0 is taken. The record shows each candidate's
difference and interval, so a reader sees how much a cheaper G could have lost.

No separator is trained, loaded or read; no test tuple and no evaluated pair's mixture is touched
(G's validation scenes are of generator pairs only, protocol.generator_val_pool). Every candidate
is made by the functions a run uses (``standins.ensure``, ``judges.ensure_*``) in a folder of its
own under ``runs/<name>-select/``, so a killed selection continues where it stopped. The record also
carries, for information only, G's two-class rate on the blend of the parts' features
(G(z, unit(f_V(fg) + f_V(bg))) of single images of the same classes), which is what the method
asks G for; it chooses nothing.

``python -m avgas select params/quick.yaml`` (``--only KEY,...`` for some settings,
``--candidates KEY=V1,V2`` to try other values).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from avgas import checkpoints, instrument, judges, metrics, models, paper, paths, protocol, standins, world
from avgas import params as params_mod
from avgas.core import generation
from avgas.judges import classifier, clip, detector
from avgas.params import Params

JUDGE_KEYS = ("detector_epochs", "clip_steps", "classifier_steps")
G_KEYS = ("g_steps", "g_blend_share")
SHARED_KEY = "stand_in_sources"  # one set of stand-ins for the two- and three-source runs, or one per size
SHARED_CANDIDATES = [None, [2, 3]]
INSTRUMENT = JUDGE_KEYS + G_KEYS + (SHARED_KEY,)  # every instrument setting a params file carries (synthetic world)

# Candidates per tier (the params file's `name`); other names use DEFAULT's. The quick tier's grid is
# tiny: it checks that the job runs end to end, its choices are the quick tier's values.
GRIDS = {
    "quick": {
        "detector_epochs": [1, 2],
        "clip_steps": [30, 60],
        "classifier_steps": [30, 60],
        "g_steps": [30, 60],
        "g_blend_share": [0.0, 0.5],
    },
    "default": {
        "detector_epochs": [20, 40, 60],
        "clip_steps": [300, 450, 600, 900],
        "classifier_steps": [400, 800, 1200],
        "g_steps": [1300, 2600, 3900],  # each (share, steps) pair is a G training: 6 here
        "g_blend_share": [0.0, 0.5],
    },
}
COST_ORDER = {"g_blend_share": 1, "g_steps": 0}  # a G tie: fewer steps first, then the smaller share

CRITERIA = {
    "judge": "on the judge pool's validation images: lowest recall minus false success (higher is better)",
    "G": "on G's validation pool (true two-class scenes of generator pairs): share of G(z, f_V(scene)) in "
    "which the chosen detector finds both classes (higher is better); the cheapest candidate whose paired 95% "
    "interval of (candidate - best) over the scenes holds 0",
    "stand-ins": "on G's validation pool of each size's run (scenes of its generator groups): the share of "
    "G(z, f_V(scene)) in which that run's detector finds every class; one set of stand-ins for both sizes when, "
    "for each size, the paired 95% interval of (shared - own) over the scenes holds 0 (it is the cheaper)",
}


class SelectionError(ValueError):
    """A selection that cannot run (a real-world params file, an unknown setting)."""


def record_path(params_file: str | Path) -> Path:
    """params/default.yaml -> params/default.selection.json."""
    f = Path(params_file)
    return f.with_name(f.stem + ".selection.json")


def grid(p: Params, overrides: dict | None = None) -> dict:
    """The candidates of every instrument setting for this params file (its tier's grid, or the
    default's), with `overrides` (key -> list) replacing some."""
    g = {k: list(v) for k, v in GRIDS.get(p.name, GRIDS["default"]).items()}
    for k, v in (overrides or {}).items():
        if k not in INSTRUMENT:
            raise SelectionError(f"--candidates {k}: not an instrument setting; one of {', '.join(INSTRUMENT)}")
        g[k] = list(v)
    return g


def judge_score(check: dict) -> float:
    """A judge's validation check as one number: its lowest recall minus its (largest) false-success
    rate. Uses only the judge's own validation images; NaN entries (not measured) are left out."""
    recalls = [v for k, v in check.items() if k.startswith("recall") and np.isfinite(v)]
    false = [v for k, v in check.items() if k.startswith("false") and np.isfinite(v)]
    if not recalls:
        return float("nan")
    return float(min(recalls) - (max(false) if false else 0.0))


def choose(scores: dict, cost_key=None):
    """The candidate with the highest score; a tie (to 1e-9) goes to the cheapest (the smallest
    value, or the smallest cost_key(candidate)); NaN scores never win."""
    finite = {c: s for c, s in scores.items() if np.isfinite(s)}
    if not finite:
        raise SelectionError("no candidate has a finite validation score")
    best = max(finite.values())
    tied = [c for c, s in finite.items() if s >= best - 1e-9]
    return min(tied, key=cost_key) if cost_key else min(tied)


def choose_within(hits: dict, cost_key, seed: int = 0) -> tuple:
    """The cheapest candidate not worse than the best beyond its interval. `hits`: candidate ->
    per-unit 0/1 (the same units, in the same order, for every candidate). The best is the highest
    mean (a tie to the cheaper); a candidate qualifies when the paired 95% bootstrap interval of
    (its hits - the best's) over the units reaches 0. Returns (choice, {candidate: paired_ci})."""
    means = {c: float(np.mean(h)) if len(h) else float("nan") for c, h in hits.items()}
    best = choose(means, cost_key)
    cis = {c: metrics.paired_ci([h], [hits[best]], seed=seed) for c, h in hits.items() if np.isfinite(means[c])}
    within = [c for c, ci in cis.items() if ci["ci95"][1] >= 0]
    return min(within, key=cost_key), cis


# ----------------------------------------------------------------------------------- the folders


def base_params(p: Params) -> Params:
    """The selection's own folder runs/<name>-select/, its world generated there once (the same
    world the run generates: a pure function of the params)."""
    return p.replace(run_root=str(p.run_dir.parent / f"{p.name}-select"), name="world", data_root=None)


def candidate_params(base: Params, label: str, **changes) -> Params:
    """A candidate's params: its own folder (checkpoints, caches), the selection's world."""
    return base.replace(name=label, data_root=str(base.data_dir), **changes)


# ----------------------------------------------------------------------------------- the judges


def _judge_report(key: str, q: Params, size: int, progress: bool) -> dict:
    judge = {"detector_epochs": detector.judge, "clip_steps": clip.judge}.get(key, classifier.judge)
    return judge(q, None, size, progress).report


def select_judge_setting(base: Params, key: str, candidates: list, progress: bool = True) -> dict:
    """Train the judge once per candidate value of `key` (each in its own folder) and choose by
    judge_score on its validation check."""
    size = base.g_resolution  # the judges see images at the generator's resolution
    scores, checks, seconds = {}, {}, {}
    for c in candidates:
        q = candidate_params(base, f"{key}{c}", **{key: c})
        t0 = time.perf_counter()
        rep = _judge_report(key, q, size, progress)
        seconds[c] = round(time.perf_counter() - t0, 1)
        checks[c] = rep["validation"]
        scores[c] = judge_score(rep["validation"])
    choice = choose(scores)
    return {
        "candidates": list(candidates),
        "criterion": CRITERIA["judge"],
        **_tie_note(scores),
        "scores": {str(c): round(scores[c], 4) for c in candidates},
        "validation checks": {str(c): checks[c] for c in candidates},
        "seconds (this call; a saved candidate is reused)": {str(c): seconds[c] for c in candidates},
        "choice": choice,
    }


# ----------------------------------------------------------------------------------- G


def g_two_class_rate(q: Params, detector_judge, pool, progress: bool = False) -> dict:
    """G of the candidate `q` (its stand-ins made by standins.ensure) on its validation pool: the
    share of G(z, f_V(true two-class scene)) in which the detector finds both classes (the
    criterion), and, for information, of G(z, unit(f_V(fg image) + f_V(bg image))) (a single
    image of each class of the scene, the blend the method asks G for)."""
    standins.ensure(q, progress)
    fv = checkpoints.load_image_encoder(q.weight_path("swav_checkpoint"))
    G = checkpoints.load_generator(q.weight_path("icgan_folder"))
    prompts = paper.prompts()
    names = pool.classes
    scenes = [i for i, s in enumerate(pool.sets) if len(s) > 1]
    singles = {}
    for i, s in enumerate(pool.sets):
        if len(s) == 1:
            singles.setdefault(next(iter(s)), []).append(i)
    wanted = [{prompts[names[c]] for c in pool.sets[i]} for i in scenes]
    feats = models.encode_images(fv, pool.images, q.fv_image_size)
    own = feats[scenes]
    # the blend: for scene number n, the n-th single image (cycling) of each of its classes
    blend = torch.stack(
        [
            torch.nn.functional.normalize(
                sum(feats[singles[c][n % len(singles[c])]] for c in sorted(pool.sets[i])), dim=0
            )
            for n, i in enumerate(scenes)
        ]
    )
    z = generation.noise(len(scenes), G.dim_z, q.seed)
    hits = {}
    for what, h in (("own", own), ("blend", blend)):
        images = generation.from_unit(generation.sample(G, h, z))
        hits[what] = np.asarray(detector_judge.hits(images, wanted), dtype=int)
    return {
        "two-class rate": float(hits["own"].mean()),
        "two-class rate on the blend (information)": float(hits["blend"].mean()),
        "scenes": len(scenes),
        "hits": hits["own"].tolist(),  # per scene, in the pool's order: the paired comparison's units
    }


def select_g(base: Params, steps: list, shares: list, detector_epochs: int, progress: bool = True) -> dict:
    """Train G for every (g_blend_share, g_steps) candidate and choose both by G's two-class rate.
    f_V and f_A do not depend on G's settings: the first candidate trains them (or finds them) in
    the instrument store and every other candidate takes the same entries from it, so only G
    differs, and each G keeps the key a run with those settings gives it (a G trained for an
    earlier call, or for a run, is reused)."""
    det_q = candidate_params(base, f"detector_epochs{detector_epochs}", detector_epochs=detector_epochs)
    detector_judge = judges.detector.judge(det_q, None, base.g_resolution, progress)
    pool = protocol.generator_val_pool(base)
    combos = [(b, s) for b in shares for s in steps]
    results, seconds = {}, {}
    for b, s in combos:
        q = candidate_params(base, _g_label(b, s), g_blend_share=b, g_steps=s)
        t0 = time.perf_counter()
        results[(b, s)] = g_two_class_rate(q, detector_judge, pool, progress)
        seconds[(b, s)] = round(time.perf_counter() - t0, 1)
    scores = {c: r["two-class rate"] for c, r in results.items()}
    cheaper = lambda c: (c[1], c[0])  # noqa: E731 -- fewer steps, then the smaller share
    (b, s), cis = choose_within({c: r["hits"] for c, r in results.items()}, cheaper)
    best = choose(scores, cheaper)
    table = {
        _g_label(*c): {
            **{k: v for k, v in results[c].items() if k != "hits"},
            f"minus the best ({_g_label(*best)}), paired over the scenes": cis.get(c),
            "seconds (this call; a saved candidate is reused)": seconds[c],
        }
        for c in combos
    }
    common = {
        "criterion": CRITERIA["G"],
        **_tie_note(scores),
        "judge": f"detector (CRS), detector_epochs {detector_epochs}, threshold {detector_judge.conf}",
        "joint scores": table,
    }
    return {
        "g_steps": {"candidates": list(steps), **common, "choice": s},
        "g_blend_share": {"candidates": list(shares), **common, "choice": b},
    }


def select_stand_in_sources(base: Params, detector_epochs: int, progress: bool = True) -> dict:
    """One set of stand-ins for the two-source run and its three-source sibling, or one per size
    (`stand_in_sources`): for each size K, that run's detector (its own judge pool) scores G(z,
    f_V(scene)) on G's validation pool of that run, with each size's own stand-ins and with the
    shared ones (the same scenes, the same z). The shared set is taken when no size loses beyond
    the paired interval: it is half the stand-ins' cost."""
    rows, within = {}, True
    for k in (2, 3):
        bk = base.replace(sources=k, stand_in_sources=None)
        tag = "" if k == 2 else f"-sources{k}"
        det_q = candidate_params(bk, f"detector_epochs{detector_epochs}{tag}", detector_epochs=detector_epochs)
        det = judges.detector.judge(det_q, None, base.g_resolution, progress)
        pool = protocol.generator_val_pool(bk)
        own = g_two_class_rate(candidate_params(bk, f"stand-ins{tag or '-sources2'}"), det, pool, progress)
        shared = g_two_class_rate(candidate_params(bk, f"stand-ins-shared{tag}", stand_in_sources=[2, 3]), det, pool)
        ci = metrics.paired_ci([shared["hits"]], [own["hits"]], seed=0)
        within = within and ci["ci95"][1] >= 0
        rows[f"sources {k}"] = {
            "own stand-ins: rate (every class found)": own["two-class rate"],
            "shared stand-ins: rate": shared["two-class rate"],
            "scenes": own["scenes"],
            "shared minus own, paired over the scenes": ci,
            "judge": f"the sources-{k} run's detector, detector_epochs {detector_epochs}, threshold {det.conf}",
        }
    return {
        "candidates": SHARED_CANDIDATES,
        "criterion": CRITERIA["stand-ins"],
        "per size": rows,
        "choice": [2, 3] if within else None,
    }


def _tie_note(scores: dict) -> dict:
    """A record entry when every candidate scored the same: the choice is then only the cheapest
    (on the quick tier, whose tiny judges find nothing, that is what happens)."""
    vals = [v for v in scores.values() if np.isfinite(v)]
    if len(vals) > 1 and max(vals) - min(vals) <= 1e-9:
        return {"tie": "every candidate scored the same: the cheapest is taken, the score chose nothing"}
    return {}


def _g_label(share, steps) -> str:
    return f"g_blend_share{share}-g_steps{steps}"


# ----------------------------------------------------------------------------------- the job


def select(
    p: Params,
    params_file: str | Path,
    only: list | None = None,
    candidates: dict | None = None,
    progress: bool = True,
) -> dict:
    """Choose the instrument settings of `p` (all, or `only` some) and write the record beside
    `params_file` (settings already in the record and not asked for are kept). Returns the record."""
    if p.world != "synthetic":
        raise SelectionError(
            f"{params_file}: world '{p.world}': the real run's instrument is the released weights, "
            "nothing to choose; selection is for the synthetic world"
        )
    keys = list(only or INSTRUMENT)
    bad = [k for k in keys if k not in INSTRUMENT]
    if bad:
        raise SelectionError(f"--only {','.join(bad)}: not instrument settings; choose from {', '.join(INSTRUMENT)}")
    g = grid(p, candidates)
    if p.threads:  # as a run's notebooks do (params.from_notebook)
        torch.set_num_threads(p.threads)
    base = base_params(p)
    world.generate(base, progress)
    out = record_path(paths.resolve(params_file))
    rec = json.loads(out.read_text()) if out.is_file() else {}
    folder = base.run_dir.parent
    where = folder.relative_to(paths.project_root()) if folder.is_relative_to(paths.project_root()) else folder
    rec.update({"params": Path(params_file).name, "criteria": CRITERIA, "folder": str(where)})
    rec.setdefault("settings", {})
    t0 = time.perf_counter()

    def write():
        rec["unselected"] = [k for k in INSTRUMENT if k not in rec["settings"]]
        text = json.dumps(rec, indent=1) + "\n"
        paths.atomic_write_text(out, text)
        paths.atomic_write_text(base.run_dir.parent / out.name, text)  # a copy beside the candidates

    for key in [k for k in JUDGE_KEYS if k in keys]:
        rec["settings"][key] = select_judge_setting(base, key, g[key], progress)
        write()
    if any(k in keys for k in G_KEYS):
        detector_epochs = rec["settings"].get("detector_epochs", {}).get("choice", p.detector_epochs)
        steps = g["g_steps"] if "g_steps" in keys else [p.g_steps]
        shares = g["g_blend_share"] if "g_blend_share" in keys else [p.g_blend_share]
        chosen = select_g(base, steps, shares, detector_epochs, progress)
        rec["settings"].update({k: v for k, v in chosen.items() if k in keys})
    if SHARED_KEY in keys:
        detector_epochs = rec["settings"].get("detector_epochs", {}).get("choice", p.detector_epochs)
        rec["settings"][SHARED_KEY] = select_stand_in_sources(base, detector_epochs, progress)
        write()
    rec["seconds (this call)"] = round(time.perf_counter() - t0, 1)
    write()
    return rec


def mismatches(params_file: str | Path, record: dict | None = None) -> list[str]:
    """Instrument values of a params file that differ from the record's choices (one line each)."""
    p = params_mod.load(params_file)
    record = record if record is not None else json.loads(record_path(params_file).read_text())
    return [
        f"{k}: {getattr(p, k)!r} in {Path(params_file).name}, the record chose {v['choice']!r}"
        for k, v in record.get("settings", {}).items()
        if getattr(p, k) != v["choice"]
    ]


def instrument_keys(p) -> dict[str, str]:
    """The store key of every part of a synthetic run's instrument (the judges judge G's images,
    so their image size is G's resolution). A part given as a file has no key."""
    parts = standins.part_settings(p)
    out = {standins.PARTS[k]: instrument.key_of(standins.PARTS[k], s) for k, s in parts.items() if "given" not in s}
    size = p.g_resolution
    out["scene_classifier"] = instrument.key_of("scene_classifier", classifier.classifier_settings(p, size))
    out["clip"] = instrument.key_of("clip", clip.clip_settings(p, size))
    out["detector"] = instrument.key_of("detector", detector.detector_settings(p, size))
    return out

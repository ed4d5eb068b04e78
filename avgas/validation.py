"""The scores settings are chosen on: Table 1-3's CRS, computed on the *validation* tuples.

Test tuples are read once, by the evaluation notebooks (04-08; 10 for the unseen pairings). A setting of the stand-ins or the
separators (`g_steps`, `g_blend_share`, `epochs`, ...) is compared between runs with these numbers
instead: the same generation (generate.embeddings_for) and the same detector at its threshold
chosen on the judge pool's validation images, on the run's validation mixtures, with a noise draw
of their own. Written to `validation.json` in the run folder; `python -m avgas validate RUN ...`
prints them side by side for several runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from avgas import checkpoints, custody, data, generate, judges, paths, runner, separators
from avgas import params as params_mod
from avgas.params import Params
from avgas.protocol import STAND_IN_KEYS
from avgas.runfolder import RunFolder

NOISE_OFFSET = 1000  # validation images use noise seeds apart from the test images' (generate.images_for)


def scores(p: Params, progress: bool = False) -> dict:
    """{'mixed'|'separated_foreground'|'separated_background': {method: CRS on validation tuples}},
    with the number of tuples and the detector threshold used."""
    cat = data.catalogue(p)
    tuples = data.make_tuples(cat, p)
    fa, fv, G = checkpoints.load_parts(p)
    val = separators.separator_data(p, cat, tuples, "val", fa, fv, progress)
    emb, _ = generate.conditions(p, val, fa)
    images = generate.images_for(G, emb, p.seed + NOISE_OFFSET)
    detector = judges.detector.judge(p, cat, next(iter(images.values())).shape[1], progress)
    wanted = judges.wanted(val.tuples)
    out: dict = {"tuples": len(val.mix), "detector threshold": detector.conf, "CRS": {}}
    for (task, method), imgs in images.items():
        out["CRS"].setdefault(task, {})[method] = round(float(np.mean(detector.hits(imgs, wanted[task]))), 4)
    return out


def save(p: Params, progress: bool = False) -> dict:
    """scores(p), written atomically to <run>/validation.json (the run's settings beside them)."""
    keys = STAND_IN_KEYS + (
        "epochs",
        "separator_width",
        "separator_seeds",
        "detector_epochs",
        "mix_lambda",
        "sources",
        "unseen_pairs",
    )
    out = {"settings": {k: getattr(p, k) for k in keys}, **scores(p, progress)}
    paths.atomic_write_text(p.folder.validation, json.dumps(out, indent=1))
    return out


def mean_over_seeds(crs: dict) -> dict:
    """'A2A', 'A2A#1', 'A2A#2' -> one 'A2A' (the mean): the seeds of a method as one row."""
    groups: dict = {}
    for method, v in crs.items():
        groups.setdefault(method.split("#")[0], []).append(v)
    return {m: float(np.mean(v)) for m, v in groups.items()}


def compare(runs: dict) -> "pd.DataFrame":  # noqa: F821 - pandas imported lazily
    """runs: label -> validation.json dict. Mixed CRS (mean over seeds) per method, a column per run."""
    return pd.DataFrame({label: mean_over_seeds(d["CRS"]["mixed"]) for label, d in runs.items()}).round(3)


def for_run(run_dir) -> Params:
    """The params a finished run folder was made with, pointing at that folder."""
    run_dir = Path(run_dir).resolve()
    if not RunFolder(run_dir).params.is_file():
        raise FileNotFoundError(
            f"{RunFolder(run_dir).params}: not a run folder (python -m avgas run <params> makes one)"
        )
    p = params_mod.load(RunFolder(run_dir).params, {"run_root": str(run_dir.parent), "name": run_dir.name})
    params_mod.protect_inputs(p)
    return p


def _finished_enough(p: Params) -> None:
    """Validation scores need the run's data, frozen parts and separators: a run that has not
    finished them is named, with the command that does."""
    done = runner.read_manifest(p.run_dir).get("notebooks", {})
    missing = [
        nb for nb in ("01_data", "02_pretrained", "03_separator") if done.get(nb, {}).get("status") != "finished"
    ]
    if missing:
        raise runner.RunError(
            f"{p.run_dir} has not finished {', '.join(missing)}, which validation scores need; finish the run "
            f"first: python -m avgas run {p.folder.params} (notebook 06 then writes validation.json)"
        )


def compare_runs(run_dirs: list) -> "pd.DataFrame":  # noqa: F821
    """validation.json of each run (computed and saved when missing, under the run's lock)."""
    runs = {}
    for d in run_dirs:
        p = for_run(d)
        f = p.folder.validation
        if not f.is_file():
            _finished_enough(p)
            with custody.hold(p.run_dir, "validation scores"):
                save(p, progress=True)
                custody.record(p.run_dir, f, "validate")
        runs[Path(d).name] = json.loads(f.read_text())
    return compare(runs)

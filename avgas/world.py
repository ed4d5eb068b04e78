"""The synthetic soundscape world, written in the layout of a user's real data.

    <data_dir>/audios/<stem>.wav     16 kHz mono, 16-bit
    <data_dir>/images/<stem>.png     one image per clip, matched by stem
    <data_dir>/metadata.csv          VGGSound rows: ytid,start_seconds,label,split (no header)
    <data_dir>/world.json            what generated it (so an unchanged world is reused)

Stems follow Sound2Scene's ``<ytid>_<start_ms>_<end_ms>`` naming of VGGSound's 10-second
segments, so :mod:`avgas.data` reads this folder exactly as it reads prepared VGGSound.
Everything is a function of (seed, class, clip index): the same params give the same bytes.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from avgas import custody, instrument, paper, paths, pictures, sounds
from avgas.layout import DataError  # a ValueError: one line at the command line, not a traceback
from avgas.params import Params
from avgas.progress import tqdm

log = logging.getLogger("avgas")

WORLD_VERSION = 3  # bump when a design changes, so old worlds are regenerated


def classes(p: Params) -> list[str]:
    """Every class the run's combinations use: backgrounds first, then foregrounds."""
    combos = p.combination_list()
    bgs = list(dict.fromkeys(bg for _, bg in combos))
    fgs = sorted(dict.fromkeys(fg for fg, _ in combos))
    return bgs + fgs


def stem_of(ytid: str, start_seconds: int) -> str:
    """Sound2Scene's file stem for a VGGSound row (a 10-second segment)."""
    start_ms = 1000 * int(start_seconds)
    return f"{ytid}_{start_ms}_{start_ms + 10000}"


def spec(p: Params) -> dict:
    """What generates the world's bytes (world.json holds it; equal specs give equal worlds)."""
    return {
        "version": WORLD_VERSION,
        "seed": p.seed,
        "classes": classes(p),
        "clips_per_class": p.clips_per_class,
        "clip_seconds": p.clip_seconds,
        "image_size": p.image_size,
        "test_fraction": p.test_fraction,
    }


@dataclass
class WorldInfo:
    data_dir: Path
    n_clips: int
    seconds: float  # generation wall time (0 when reused)
    megabytes: float
    reused: bool


def _clip_rng(seed: int, class_index: int, clip: int, what: int) -> np.random.Generator:
    # independent streams per (class, clip, audio/image), stable under changes to other classes
    return np.random.default_rng([seed, class_index, clip, what])


def _folder_mb(d: Path) -> float:
    return sum(f.stat().st_size for f in d.rglob("*") if f.is_file()) / 2**20


def generate(p: Params, progress: bool = True) -> WorldInfo:
    """Write the synthetic world for `p` into p.data_dir (reused when it already matches and its
    recorded files are whole). One process at a time per data folder; files avgas did not write
    are never replaced (custody)."""
    require_synthetic(p)
    _refuse_theirs(p)  # before a lock file is made in a folder that is not avgas's
    with custody.hold(p.data_dir, "the synthetic world"):
        return _generate(p, progress)


def require_synthetic(p: Params) -> None:
    if p.world != "synthetic":
        raise DataError(
            f"world is {p.world!r}: the synthetic world is only generated for "
            "world: synthetic (VGGSound data is prepared with prepare-vggsound)"
        )


def _refuse_theirs(p: Params) -> None:
    """Clips or a csv that no synthetic world of avgas wrote are the user's: never replaced."""
    out, d = p.data_dir, p.data
    mine = d.world.is_file()  # avgas generated this folder (before it kept a record, too)
    theirs = [
        f
        for f in (d.audios, d.images, d.metadata)
        if (f.is_file() or (f.is_dir() and any(f.iterdir()))) and not (mine or custody.owned(out, f))
    ]
    if theirs:
        raise DataError(
            f"{out} holds files that avgas did not generate ({theirs[0]} is there, and there is no "
            "world.json); the synthetic world replaces its folder's clips and csv, so give it its own "
            "folder (params key 'data_root', or null for <run>/data). Nothing was changed."
        )


def _generate(p: Params, progress: bool) -> WorldInfo:
    out, d = p.data_dir, p.data
    want = spec(p)
    stamp = d.world
    if stamp.is_file() and json.loads(stamp.read_text()).get("spec") == want:
        damaged = custody.verify(out)
        if not damaged:
            return WorldInfo(out, sum(1 for _ in open(d.metadata)), 0.0, _folder_mb(out), True)
        log.warning(
            "the synthetic world in %s is regenerated: %s is damaged (%s)", out, damaged[0].path, damaged[0].why
        )
    _refuse_theirs(p)
    paths.guard(out)
    for sub in (d.audios, d.images):  # never mix clips of two different worlds
        shutil.rmtree(sub, ignore_errors=True)
        sub.mkdir(parents=True)
    stamp.unlink(missing_ok=True)
    stored = instrument.tree(p, "world", want, out)  # generated before, by another run (avgas.instrument)
    if instrument.fetch(stored) is not None:  # (perhaps after waiting for a run beside this one to make it)
        stored = instrument.tree(p, "world", want, out)
        custody.record(out, [f for _, f in stored.files], "synthetic world")
        return WorldInfo(out, sum(1 for _ in open(d.metadata)), 0.0, _folder_mb(out), True)

    t0 = time.perf_counter()
    all_names = paper.background_classes() + paper.foreground_classes()
    rows = []
    n_test = max(1, round(p.clips_per_class * p.test_fraction))
    jobs = [(label, j) for label in want["classes"] for j in range(p.clips_per_class)]
    for label, j in tqdm(jobs, desc="synthetic world", disable=not progress, unit="clip"):
        ci = all_names.index(label)  # index in the paper's list: stable whatever the run uses
        meta = _clip_rng(p.seed, ci, j, 0)
        ytid = f"sy{ci:02d}{j:05d}{int(meta.integers(0, 256)):02x}"  # 11 characters, like YouTube's
        start = int(meta.integers(0, 30)) * 10
        stem = stem_of(ytid, start)
        level = sounds.natural_level(meta)  # per-clip loudness: a natural spread, as recordings have
        wave = sounds.render(label, _clip_rng(p.seed, ci, j, 1), p.clip_seconds, level)
        sf.write(d.audio(stem), wave, sounds.SR, subtype="PCM_16")
        pictures.draw(label, _clip_rng(p.seed, ci, j, 2), p.image_size).save(d.image(stem, ".png"), optimize=False)
        rows.append((ytid, start, label, "test" if j < n_test else "train"))
    text = io.StringIO(newline="")
    csv.writer(text).writerows(rows)
    paths.atomic_write_text(d.metadata, text.getvalue())
    seconds = time.perf_counter() - t0
    paths.atomic_write_text(stamp, json.dumps({"spec": want, "seconds": round(seconds, 2)}, indent=1))
    files = [d.metadata, stamp, *d.audios.iterdir(), *d.images.iterdir()]
    custody.record(out, files, "synthetic world")
    names = [f.relative_to(out).as_posix() for f in files]
    instrument.publish(instrument.tree(p, "world", want, out, names), {"clips": len(rows)}, seconds)
    return WorldInfo(out, len(rows), seconds, _folder_mb(out), False)


def composites(p: Params, split: str, per_combination: int) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """Scenes holding both classes of each combination (the foreground object on the background
    scene): (n, S, S, 3) uint8 images and their (foreground, background) labels. Deterministic;
    each split draws from its own random stream, so test scenes are never seen in training."""
    stream = {"train": 101, "val": 102, "test": 103}[split]
    images, labels = [], []
    for ci, (*fgs, bg) in enumerate(p.groups()):  # K sources: every foreground of the group
        for j in range(per_combination):
            rng = np.random.default_rng([p.seed, stream, ci, j])
            images.append(np.asarray(pictures.composite_many(fgs, bg, rng, p.image_size)))
            labels.append((*fgs, bg))
    return np.stack(images), labels

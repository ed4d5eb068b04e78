"""Clips, splits and the training tuples of Section 3.1 — one code path for both worlds.

A data folder holds ``audios/<stem>.wav``, ``images/<stem>.jpg|png`` and a metadata csv in
VGGSound's row format (``ytid,start_seconds,label,split``). :func:`catalogue` pairs them by stem;
the csv's ``train`` clips are split again into train and val (held out for model selection), its
``test`` clips stay test. Every clip is in exactly one split, so tuples of different splits never
share a source clip. A tuple is (mixed audio, audio 1, audio 2, image 1, image 2) with 1 = the
foreground class and 2 = the background class of a Table 4 combination.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import json
import logging
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import torch
from PIL import Image

from avgas import codestamp, duplicates, paper, paths, progress, slots, world
from avgas import spectrogram as spec
from avgas.layout import IMAGE_SUFFIXES, SPLITS, DataError  # noqa: F401 - data.DataError: the name callers use
from avgas.params import Params
from avgas.progress import tqdm

log = logging.getLogger("avgas")


@dataclass
class Prepared:
    data_dir: Path
    n_clips: int
    seconds: float
    megabytes: float
    generated: bool


def prepare(p: Params, progress: bool = True) -> Prepared:
    """Make the data folder ready: generate the synthetic world, or check a prepared VGGSound
    folder is in place. Later steps read the folder the same way in both cases."""
    if p.world == "synthetic":
        w = world.generate(p, progress=progress)
        return Prepared(w.data_dir, w.n_clips, w.seconds, w.megabytes, not w.reused)
    for need in (p.data.audios, p.data.images, p.metadata_path):
        if not need.exists():
            raise DataError(
                f"{need} is missing: the params key 'data_root' (or 'metadata_csv') must "
                "point at data prepared with `python -m avgas prepare-vggsound`"
            )
    n = sum(1 for _ in open(p.metadata_path))
    return Prepared(p.data_dir, n, 0.0, 0.0, False)


def _split_val(stems: list[str], fraction: float, seed: int) -> set[str]:
    """A fixed, seed-dependent share of a class's train clips, chosen by hashing the stem (so
    adding clips never moves an existing clip to another split)."""
    ranked = sorted(stems, key=lambda s: hashlib.sha1(f"{seed}:{s}".encode()).hexdigest())
    return set(ranked[: max(1, round(fraction * len(stems)))])


def split_over_groups(meta: pd.DataFrame, p: Params, group_of: dict | None = None) -> pd.Series:
    """Each clip's split (train/val/test), made over duplicate groups so that no group spans two
    splits: a group with a clip in the csv's test split is test as a whole, and val is drawn per
    class among the remaining groups (by the hash of the group's kept clip). `group_of`: stem ->
    its group's kept clip (default: the groups prepare-vggsound recorded; a clip of no group is its
    own group, which gives the plain per-clip split)."""
    group_of = duplicates.recorded(p.data_dir).group_of() if group_of is None else group_of
    key = meta["stem"].map(lambda s: group_of.get(s, s))
    split = meta["split"].str.strip().str.lower()
    split[key.isin(set(key[split == "test"]))] = "test"
    for label, keys in key[split == "train"].groupby(meta["label"]):
        val = _split_val(sorted(set(keys)), p.val_fraction, p.seed)
        split[keys.index[keys.isin(val)]] = "val"
    first = pd.Series(split.to_numpy(), index=key.to_numpy())  # a group over two classes: its first clip's
    return pd.Series(first.groupby(level=0).first().reindex(key).to_numpy(), index=meta.index)


# ------------------------------------------------------------- csv rows in VGGSound's format


@dataclass
class Row:
    line: int
    ytid: str
    start: int
    label: str
    split: str

    @property
    def tuple(self) -> tuple[str, int, str, str]:
        return self.ytid, self.start, self.label, self.split


@dataclass
class CsvScan:
    """Every line of a VGGSound csv, sorted into exactly one kind."""

    path: Path
    lines: int = 0
    rows: list[Row] = field(default_factory=list)  # well-formed rows, first occurrences only
    duplicates: dict[int, int] = field(default_factory=dict)  # line -> the line it repeats
    unparseable: list[tuple[int, str, list[str]]] = field(default_factory=list)  # (line, why, fields)
    header: int = 0
    blank: int = 0
    comments: int = 0

    def accounted(self) -> int:
        return len(self.rows) + len(self.duplicates) + len(self.unparseable) + self.header + self.blank + self.comments


_BAD_YTID = re.compile(r"[\s\"'/\\,]")


def _parse_row(fields: list[str]) -> tuple[str, int, str, str]:
    """One csv row's fields -> (ytid, start, label, split); ValueError says what is wrong."""
    if len(fields) != 4:
        raise ValueError(
            f"{len(fields)} fields, expected 4 (ytid,start_seconds,label,split; a label with a "
            "comma must be in double quotes)"
        )
    ytid, start, label, split = (x.strip() for x in fields)
    if not ytid or _BAD_YTID.search(ytid):
        raise ValueError(f"ytid {ytid!r} is not a video id")
    try:
        seconds = float(start)
    except ValueError:
        raise ValueError(f"start_seconds {start!r} is not a number") from None
    if not np.isfinite(seconds) or seconds < 0 or not seconds.is_integer():
        raise ValueError(f"start_seconds {start!r} is not a whole number of seconds >= 0")
    if not label:
        raise ValueError("empty label")
    if split.lower() not in ("train", "test"):
        raise ValueError(f"split {split!r} is not train or test")
    return ytid, int(seconds), label, split.lower()


def scan_csv(path: Path, key: str, where: str) -> CsvScan:
    """Read a csv of VGGSound's rows line by line; a malformed line is reported with its number,
    never dropped. `key` (the params key that names the file) and `where` go into its errors.

    Each physical line is parsed by itself (quoted labels with commas work; a stray quote damages
    only its own line). A first line that names columns is a header; blank lines and lines starting
    with '#' are counted."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: csv not found (params key '{key}'; {where})")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read the csv (params key '{key}'): {e.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(
            f"{path}: not UTF-8 text (line {line}, byte {e.start}); params key '{key}' must "
            "name a UTF-8 csv (save it as UTF-8)"
        ) from None
    scan = CsvScan(path)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line starts no line
    scan.lines = len(lines)
    seen: dict[tuple[str, int, str], int] = {}
    content = 0
    for n, line in enumerate(lines, start=1):
        line = line.rstrip("\r")
        if not line.strip():
            scan.blank += 1
            continue
        if line.lstrip().startswith("#"):
            scan.comments += 1
            continue
        content += 1
        try:
            fields = next(csv.reader([line], strict=True))
        except csv.Error as e:
            scan.unparseable.append((n, f"bad quoting ({e})", next(csv.reader([line]), [])))
            continue
        try:
            ytid, start, label, split = _parse_row(fields)
        except ValueError as e:
            if content == 1 and len(fields) >= 2 and not any(c.isdigit() for c in fields[1]):
                scan.header += 1  # e.g. ytid,start_seconds,label,split
            else:
                scan.unparseable.append((n, str(e), fields))
            continue
        key = (ytid, start, label)
        if key in seen:
            scan.duplicates[n] = seen[key]
            continue
        seen[key] = n
        scan.rows.append(Row(n, ytid, start, label, split))
    return scan


def read_metadata(path: Path) -> pd.DataFrame:
    """The metadata csv as a table (ytid, start_seconds, label, split, line). Lines that are not
    rows, repeated rows and clips given two labels are left out, each listed in
    ``df.attrs['problems']`` as (file:line, why): nothing is dropped without a word."""
    scan = scan_csv(
        path, "metadata_csv", "prepare it with `python -m avgas prepare-vggsound`, or let the synthetic world write it"
    )
    name = Path(path).name
    problems = [(f"{name}:{n}", f"unparseable csv line {n}: {why}") for n, why, _ in scan.unparseable]
    problems += [(f"{name}:{n}", f"duplicate of line {first}") for n, first in scan.duplicates.items()]
    labels: dict = {}
    for r in scan.rows:
        labels.setdefault((r.ytid, r.start), []).append(r)
    keep = []
    for rows in labels.values():
        if len(rows) > 1:  # one clip, two labels: which one is right cannot be told, so neither is used
            for r in rows:
                others = ", ".join(f"line {o.line}: {o.label!r}" for o in rows if o is not r)
                problems.append((f"{name}:{r.line}", f"conflicting labels (also {others})"))
            continue
        r = rows[0]
        keep.append((r.ytid, r.start, r.label, r.split, r.line))
    df = pd.DataFrame(sorted(keep, key=lambda x: x[-1]), columns=["ytid", "start_seconds", "label", "split", "line"])
    df.attrs["problems"] = sorted(problems, key=lambda x: int(x[0].rsplit(":", 1)[1]))
    df.attrs["header"] = scan.header
    return df


def catalogue(p: Params, screen: bool = True) -> pd.DataFrame:
    """Every usable clip of the run's classes: stem, label, split (train/val/test), file paths.

    Rows whose audio or image file is missing are skipped and listed in ``df.attrs['skipped']``
    as (stem, reason); a class left without clips in some split stops the run. `screen`: read
    every clip once (ClipScreen) and skip the unusable ones; False only looks for the files."""
    meta = read_metadata(p.metadata_path)
    skipped = list(meta.attrs["problems"])
    wanted = world.classes(p)
    skipped += _near_misses(meta, wanted, Path(p.metadata_path).name)
    meta = meta[meta["label"].isin(wanted)].copy()
    meta["stem"] = [world.stem_of(y, s) for y, s in zip(meta["ytid"], meta["start_seconds"])]
    audio_dir, image_dir = p.data.audios, p.data.images
    audios, images, keep = [], [], []
    screener = ClipScreen(p) if screen else None
    for stem in meta["stem"]:
        a = audio_dir / f"{stem}.wav"
        i = next((image_dir / f"{stem}{suf}" for suf in IMAGE_SUFFIXES if (image_dir / f"{stem}{suf}").is_file()), None)
        why = (
            "no audio file"
            if not a.is_file()
            else "no image file"
            if i is None
            else screener.problem(a, i)
            if screener
            else None
        )
        if why:
            skipped.append((stem, why))
        keep.append(not why)
        audios.append(str(a))
        images.append(str(i) if i else "")
    if screener:
        screener.save()
    meta["audio"], meta["image"] = audios, images
    meta = meta[keep]
    for stem, reason in skipped:
        log.warning("skipping clip %s: %s", stem, reason)
    _report_skips(p, skipped)

    meta["split"] = split_over_groups(meta, p)

    counts = (
        meta.groupby(["label", "split"])
        .size()
        .unstack(fill_value=0)
        .reindex(index=wanted, columns=list(SPLITS), fill_value=0)
    )
    short = counts[(counts == 0).any(axis=1)]
    if len(short):
        raise DataError(
            "too few clips: every class needs at least one clip in each of train, val "
            "and test. Counts per split:\n" + short.to_string()
        )
    meta = meta.reset_index(drop=True)[["stem", "ytid", "start_seconds", "label", "split", "audio", "image"]]
    meta.attrs["skipped"] = skipped
    return meta


def _near_misses(meta: pd.DataFrame, wanted: list[str], name: str) -> list[tuple[str, str]]:
    """Rows whose label is not a class of the run as written, but nearly one ('Hail ' for 'hail'):
    labels are compared exactly as the class list writes them, and a near miss is reported with
    a did-you-mean instead of vanishing with the rows of other classes."""
    folded = {w.strip().casefold(): w for w in wanted}
    out = []
    for label, line in zip(meta["label"], meta["line"]):
        if label in wanted:
            continue
        near = folded.get(str(label).strip().casefold()) or next(
            iter(difflib.get_close_matches(str(label), wanted, n=1, cutoff=0.85)), None
        )
        if near:
            out.append((f"{name}:{line}", f"label {label!r} is not a class of this run (did you mean {near!r}?)"))
    return out


def _report_skips(p: Params, skipped: list[tuple[str, str]]) -> None:
    """The skips where a batch user looks: log.txt and the terminal (progress lines), once per
    change of the skip list (every notebook reads the catalogue)."""
    if not skipped or not os.environ.get(progress.ENV_LOG):
        return
    said = p.cache_dir / "skips_reported.txt"
    digest = hashlib.sha1(json.dumps(skipped).encode()).hexdigest()
    try:
        if said.is_file() and said.read_text() == digest:
            return
    except OSError:
        pass
    kinds = Counter(reason.split(" (")[0].split(":")[0] for _, reason in skipped)
    progress.emit(
        f"{len(skipped)} clips or csv lines skipped ("
        + ", ".join(f"{k}: {n}" for k, n in kinds.most_common())
        + "); notebook 01 lists them all"
    )
    for stem, reason in skipped[:3]:
        progress.emit(f"  skipped {stem}: {reason}")
    try:
        paths.atomic_write_text(said, digest)
    except OSError:
        pass


class ClipScreen:
    """Every clip is read once and checked by the rule of `spectrogram.wave_problem` (16 kHz,
    finite, long enough, not silent) and its image decoded in full; the verdicts are kept in
    <run>/cache/clip_checks.json by file size and time, so later notebooks do not read again."""

    def __init__(self, p: Params):
        self.file = p.cache_dir / "clip_checks.json"
        self.min_seconds = min(p.min_clip_seconds, p.clip_seconds)
        rule = [self.min_seconds, codestamp.stamp(["import avgas.data"])]  # the checks' code counts too
        try:
            self.known = json.loads(self.file.read_text()) if self.file.is_file() else {}
        except ValueError:
            self.known = {}
        if self.known.get("_rule") != rule:
            self.known = {"_rule": rule}
        self.changed = False

    def problem(self, audio: Path, image: Path) -> str | None:
        key = "|".join(f"{f}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in (audio, image))
        if key not in self.known:
            self.known[key] = audio_problem(audio, self.min_seconds) or image_problem(image) or ""
            self.changed = True
        return self.known[key] or None

    def save(self) -> None:
        if self.changed:
            try:
                paths.atomic_write_text(self.file, json.dumps(self.known))
            except OSError as e:  # a cache: the clips are simply checked again next time
                log.warning("cannot save %s: %s", self.file, e)


def header_problem(path: Path, min_seconds: float = 0.0) -> str | None:
    """The cheap part of the rule, from the wav's header alone: readable, 16 kHz, long enough."""
    try:
        info = sf.info(str(path))
    except Exception as e:  # noqa: BLE001 - soundfile raises several types
        return f"cannot read audio ({' '.join(str(e).split())[:160]})"
    if info.samplerate != spec.SR:
        return f"sample rate is {info.samplerate} Hz; Sound2Scene's encoder expects {spec.SR} Hz"
    if info.frames < max(spec.NPERSEG, int(round(min_seconds * spec.SR))):
        return f"too short ({info.frames / spec.SR:.3f} s)"
    return None


def audio_problem(path: Path, min_seconds: float = 0.0) -> str | None:
    """Why a wav cannot be used (unreadable, wrong rate, too short, non-finite, silent), or None."""
    try:
        x, sr = spec.read_wave(path)
    except spec.AudioError as e:
        return str(e).removeprefix(f"{path}: ")
    return spec.wave_problem(x, sr, min_seconds)


def image_problem(path: Path) -> str | None:
    """Why an image cannot be used (not an image, truncated), or None."""
    try:
        with Image.open(path) as img:
            img.load()
        return None
    except Exception as e:  # noqa: BLE001 - PIL raises several types for broken files
        return f"unreadable image ({type(e).__name__}: {' '.join(str(e).split())[:120]})"


def counts_table(cat: pd.DataFrame, p: Params) -> pd.DataFrame:
    """Clips per class and split, with each class's role and its Table 5 prompt."""
    t = (
        cat.groupby(["label", "split"])
        .size()
        .unstack(fill_value=0)
        .reindex(index=world.classes(p), columns=list(SPLITS), fill_value=0)
    )
    bgs = {bg for _, bg in p.combination_list()}
    t.insert(0, "role", ["background" if c in bgs else "foreground" for c in t.index])
    t.insert(1, "prompt", [paper.prompts().get(c, "") for c in t.index])
    t["total"] = t[list(SPLITS)].sum(axis=1)
    t.loc["total"] = ["", ""] + [int(t[c].sum()) for c in (*SPLITS, "total")]
    return t


def make_tuples(cat: pd.DataFrame, p: Params) -> pd.DataFrame:
    """Training tuples per split: for every combination, (foreground clip, background clip)
    pairs drawn from that split only (with `sources` K: one clip of each of the group's K
    classes, `Params.groups`). Counts per split come from the params and are spread evenly over
    the combinations; tuples repeat only when a combination has fewer distinct ones than it needs."""
    groups = p.groups()
    prefixes = slots.prefixes(p.sources)
    rows = []
    for si, (split, total) in enumerate(zip(SPLITS, (p.train_tuples, p.val_tuples, p.test_tuples))):
        per = np.full(len(groups), total // len(groups))
        per[: total % len(groups)] += 1
        in_split = cat[cat["split"] == split]
        for ci, (group, n) in enumerate(zip(groups, per)):
            clips = [in_split.loc[in_split["label"] == c, "stem"].to_numpy() for c in group]
            rng = np.random.default_rng([p.seed, 11, si, ci])
            shape = tuple(len(c) for c in clips)
            n_distinct = int(np.prod(shape))
            picks = rng.choice(n_distinct, size=n, replace=n > n_distinct)
            for k in picks:
                which = np.unravel_index(k, shape)  # for two sources: (k // n_bg, k % n_bg)
                rows.append((split, slots.name(group), *group, *(c[w] for c, w in zip(clips, which))))
    # unseen pairings (two sources): tuples of the test clips only, never a training or validation
    # tuple; split 'unseen', which the notebooks that read 'test' do not see (notebook 10 does)
    unseen = p.unseen()
    per = np.full(len(unseen), p.test_tuples // max(1, len(groups)))
    in_test = cat[cat["split"] == "test"]
    for ui, ((fg, bg), n) in enumerate(zip(unseen, per)):
        clips = [in_test.loc[in_test["label"] == c, "stem"].to_numpy() for c in (fg, bg)]
        rng = np.random.default_rng([p.seed, 12, ui])
        shape = (len(clips[0]), len(clips[1]))
        picks = rng.choice(shape[0] * shape[1], size=n, replace=n > shape[0] * shape[1])
        for k in picks:
            rows.append(("unseen", slots.name((fg, bg)), fg, bg, clips[0][k // shape[1]], clips[1][k % shape[1]]))
    columns = [f"{x}_label" for x in prefixes] + [f"{x}_stem" for x in prefixes]
    df = pd.DataFrame(rows, columns=["split", "combination", *columns])
    df.insert(0, "tuple_id", [f"{s}-{i:05d}" for s, i in zip(df["split"], df.groupby("split").cumcount())])
    return df


def tuple_table(tuples: pd.DataFrame) -> pd.DataFrame:
    """Tuples per combination and split (and the unseen pairings' tuples, when the run has them),
    and how many distinct source clips each split uses."""
    splits = list(SPLITS) + (["unseen"] if (tuples["split"] == "unseen").any() else [])
    t = tuples.groupby(["combination", "split"]).size().unstack(fill_value=0).reindex(columns=splits, fill_value=0)
    t.loc["total"] = t.sum()
    t.loc["distinct clips"] = [
        len(set().union(*(tuples.loc[tuples["split"] == s, c] for c in slots.stem_columns(tuples)))) for s in splits
    ]
    return t


# ------------------------------------------------------------------------------ audio and images


def mix(fg: np.ndarray, bg: np.ndarray, relative_level_db: float = 0.0, more_fg=()) -> np.ndarray:
    """Mix by addition, foreground(s) scaled by the relative level (`more_fg`: the other
    foregrounds of a K-source mix). A mix that would leave [-1, 1] is scaled down as a whole
    (never clipped), which the per-clip standardisation undoes."""
    m = bg + sum([fg, *more_fg]) * (10 ** (relative_level_db / 20))
    peak = np.abs(m).max(axis=-1, keepdims=True)
    return m / np.maximum(peak, 1.0)


def load_waves(cat: pd.DataFrame, stems, clip_seconds: float, progress: bool = False) -> np.ndarray:
    """(n, samples) float32 waveforms of the given clips, fitted to the clip length."""
    path = dict(zip(cat["stem"], cat["audio"]))
    return np.stack(
        [
            spec.load_wave(path[s], clip_seconds)
            for s in tqdm(list(stems), desc="reading audio", disable=not progress, unit="clip")
        ]
    )


def load_image(path: str | Path, size: int | None = None) -> np.ndarray:
    """(H, W, 3) uint8, resized (bicubic) to size x size when given."""
    try:
        img = Image.open(path).convert("RGB")
    except Exception as e:  # noqa: BLE001 - a truncated or non-image file: name it
        raise DataError(f"{path}: unreadable image ({type(e).__name__}: {' '.join(str(e).split())[:120]})") from None
    if size and img.size != (size, size):
        img = img.resize((size, size), Image.BICUBIC)
    return np.array(img)  # a writable copy: torch.from_numpy warns on a read-only array


def _fingerprint(p: Params, **extra) -> dict:
    stamp = p.data.world
    return {
        "clip_seconds": p.clip_seconds,
        "data": str(p.data_dir),
        "world": stamp.read_text() if stamp.is_file() else str(p.metadata_path.stat().st_mtime),
        "code": codestamp.stamp(["import avgas.data"]),  # what makes them: a changed STFT remakes them
        **extra,
    }


def clip_spectrograms(p: Params, cat: pd.DataFrame, stems, name: str, progress: bool = True) -> torch.Tensor:
    """(n, 257, T) spectrograms of single clips, cached under the run's cache folder."""
    stems = list(stems)

    def rows(i: int, j: int) -> torch.Tensor:
        waves = load_waves(cat, stems[i:j], p.clip_seconds, progress)
        return spec.batched(waves, p.spectrogram_batch, progress, desc=f"spectrograms ({name})")

    return spec.cached(
        p.cache_dir / f"spec_clips_{name}.pt", stems, lambda: rows(0, len(stems)), rows, **_fingerprint(p)
    )


def mix_spectrograms(
    p: Params, cat: pd.DataFrame, tuples: pd.DataFrame, name: str, progress: bool = True
) -> torch.Tensor:
    """(n, 257, T) spectrograms of the tuples' mixtures, cached."""

    columns = slots.stem_columns(tuples)  # fg, (fg2, ...), bg

    def rows(i: int, j: int) -> torch.Tensor:
        waves = [load_waves(cat, tuples[c].iloc[i:j], p.clip_seconds, progress) for c in columns]
        return spec.batched(
            mix(waves[0], waves[-1], p.relative_level_db, waves[1:-1]),
            p.spectrogram_batch,
            progress,
            desc=f"mix spectrograms ({name})",
        )

    keys = ["|".join(stems) for stems in zip(*(tuples[c] for c in columns))]
    return spec.cached(
        p.cache_dir / f"spec_mix_{name}.pt",
        keys,
        lambda: rows(0, len(keys)),
        rows,
        **_fingerprint(p, level=p.relative_level_db),
    )


def load_images(cat: pd.DataFrame, stems, size: int | None = None) -> torch.Tensor:
    """(n, S, S, 3) uint8 images of the given clips."""
    path = dict(zip(cat["stem"], cat["image"]))
    return torch.from_numpy(np.stack([load_image(path[s], size) for s in stems]))

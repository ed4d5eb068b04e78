"""`python -m avgas check PARAMS`: is everything this run needs in place, before any work?

Every data path and weight file of the params is checked for existence and format (the same
loaders the run uses), the device is resolved, and ffmpeg is looked for when VGGSound must be
prepared. For the real run, the ingestion inputs are read too: VGGSound's csv (UTF-8, its rows
parsed line by line as prepare-vggsound does), the video folder (video files counted, the needed
clips looked up) and the frame json (a JSON object). One row per item; the command exits 1 if any
row is not ok.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pandas as pd
import torch

from avgas import checkpoints, custody, data, duplicates, judges, params, paths, separators, standins, vggsound, world
from avgas.params import Params, ParamsError

WEIGHTS = params.WEIGHT_KEYS
STAND_IN = {"sound2scene_checkpoint", "swav_checkpoint", "icgan_folder"}  # trained by notebook 02
JUDGES = {"inception_weights", "detector_weights", "clip_checkpoint"}  # trained by 05-07


def _millions(model) -> str:
    return f"{sum(t.numel() for t in model.parameters()) / 1e6:.1f}"


def _check_weight(p: Params, key: str) -> tuple[str, str]:
    path = p.weight_path(key)
    if p.world == "synthetic" and getattr(p, key) is None:
        return "ok", (
            "trained by notebook 02 if missing"
            if key in STAND_IN
            else "the synthetic world trains its own judge (notebooks 05-07)"
        )
    if not path.exists():
        return "missing", f"not found; {checkpoints.where_to_get(key)}"
    try:
        return "ok", _weight_detail(p, key, path)
    except checkpoints.CheckpointError as e:
        return "wrong", str(e)


def _weight_detail(p: Params, key: str, path) -> str:
    """What a weight file holds, read by the loader that uses it (a CheckpointError when it cannot)."""
    if key == "sound2scene_checkpoint":
        return f"f_A, {_millions(checkpoints.load_audio_encoder(path))} M parameters"
    if key == "swav_checkpoint":
        return f"f_V trunk, {_millions(checkpoints.load_image_encoder(path))} M parameters"
    if key == "icgan_folder":
        G = checkpoints.load_generator(path)
        return f"G at {G.resolution} px, {_millions(G)} M parameters"
    if key == "inception_weights":
        checkpoints.inception_weights(p)
        return "FID Inception (torch-fidelity format)"
    if key == "detector_weights":
        return judges.detector_file_info(path)
    if key == "clip_checkpoint":
        return judges.clip_file_info(path, p.clip_model)
    return ""


def _data_rows(p: Params, sample: int | None = 50) -> list[tuple]:
    """The prepared data of the real run: the layout's folders, the metadata csv, the usable clips."""
    rows = []
    for what, key, path in (
        ("clips (audio)", "data_root", p.data.audios),
        ("clips (images)", "data_root", p.data.images),
        ("metadata csv", "metadata_csv", p.metadata_path),
    ):
        rows.append(
            (
                what,
                key,
                str(path),
                "ok" if path.exists() else "missing",
                "" if path.exists() else "prepare it with `python -m avgas prepare-vggsound`",
            )
        )
    if all(r[3] == "ok" for r in rows):
        try:
            cat = data.catalogue(p, screen=False)
            rows.append(
                (
                    "usable clips",
                    "data_root",
                    str(p.data_dir),
                    "ok",
                    (
                        f"{len(cat)} clips of {cat['label'].nunique()} classes; "
                        f"{len(cat.attrs['skipped'])} skipped (missing files, csv lines)"
                    ),
                )
            )
            rows.append(_content_row(p, cat, sample))
        except data.DataError as e:
            rows.append(("usable clips", "data_root", str(p.data_dir), "wrong", str(e)))
    return rows


def _content_row(p: Params, cat, sample: int | None) -> tuple:
    """What the clips hold, by the run's own rule (data.ClipScreen): every wav's header, and the
    full audio and image of `sample` clips drawn at random (None: of every clip)."""
    min_s = min(p.min_clip_seconds, p.clip_seconds)
    bad = [(s, why) for s, a in zip(cat["stem"], cat["audio"]) if (why := data.header_problem(a, min_s))]
    picks = (
        np.arange(len(cat))
        if sample is None or sample >= len(cat)
        else np.random.default_rng(0).choice(len(cat), sample, replace=False)
    )
    known = {s for s, _ in bad}
    for i in picks:
        row = cat.iloc[int(i)]
        if row["stem"] not in known:
            why = data.audio_problem(row["audio"], min_s) or data.image_problem(row["image"])
            if why:
                bad.append((row["stem"], why))
    what = f"headers of all {len(cat)} wavs, audio and image of {len(picks)} clips" + (
        "" if len(picks) == len(cat) else " (sample; --all reads every clip)"
    )
    if not bad:
        return "clip content", "data_root", str(p.data_dir), "ok", f"{what}: all usable"
    detail = f"{what}: {len(bad)} will be skipped by the run, e.g. {bad[0][0]}: {bad[0][1]}"
    short = _left_short(p, cat, {s for s, _ in bad})
    return "clip content", "data_root", str(p.data_dir), "wrong" if short else "ok", detail + short


def _left_short(p: Params, cat, skipped: set) -> str:
    """'' when every class keeps a clip in train, val and test after the skips; else which classes
    (and the combinations they belong to) are left short, with their counts."""
    kept = cat[~cat["stem"].isin(skipped)]
    counts = (
        kept.groupby(["label", "split"])
        .size()
        .unstack(fill_value=0)
        .reindex(index=sorted(cat["label"].unique()), columns=list(data.SPLITS), fill_value=0)
    )
    short = [c for c, row in counts.iterrows() if (row == 0).any()]
    if not short:
        return ""
    groups = [" + ".join(g) for g in p.groups() if set(g) & set(short)]
    per = "; ".join(f"{c}: " + ", ".join(f"{k} {int(v)}" for k, v in counts.loc[c].items()) for c in short)
    return (
        f"; these skips leave {len(short)} class(es) without a clip in some split ({per}), so "
        f"{len(groups)} combination(s) cannot be formed ({', '.join(groups[:5])}{' ...' if len(groups) > 5 else ''})"
    )


def _own_checkpoint_rows(p: Params) -> list[tuple]:
    """This run's own stand-ins and separators, if it has any: whole (their bytes match the hashes
    written when they were trained), or damaged (the next run trains them again)."""
    rows = []
    report = p.folder.stand_ins_report
    if report.is_file():
        try:
            bad = standins.damaged(p, json.loads(report.read_text()))
        except ValueError:
            bad = [f"{report} cannot be read"]
        rows.append(
            (
                "stand-ins of this run",
                "-",
                str(p.checkpoint_dir),
                "wrong" if bad else "ok",
                "; ".join(bad) + " (the next run trains them again)" if bad else "whole (hashes match)",
            )
        )
    for a in p.alignments:
        folder = separators.separator_folder(p, a)
        if not (folder / "last.pt").is_file():
            continue
        try:
            want = torch.load(folder / "last.pt", weights_only=False, map_location="cpu").get("best_hash")
            whole = (folder / "best.pt").is_file() and want == paths.file_hash(folder / "best.pt")
            why = "" if whole else f"{folder / 'best.pt'} is missing or damaged"
        except Exception as e:  # noqa: BLE001 - any unreadable checkpoint is damaged
            why = f"{folder / 'last.pt'} cannot be read ({checkpoints.first_line(e)})"
        rows.append(
            (
                f"separator {a} of this run",
                "-",
                str(folder),
                "wrong" if why else "ok",
                f"{why} (the next run trains it again)" if why else "whole (hashes match)",
            )
        )
    return rows


def _record_rows(p: Params) -> list[tuple]:
    """Every file the run (and its synthetic world) recorded (custody's artifacts.json), whole or
    named with the notebook or command that writes it again: the same record a rerun verifies."""
    rows = []
    for what, root in (("files of this run", p.run_dir), ("files of the data folder", p.data_dir)):
        if what.endswith("data folder") and (p.world != "synthetic" or p.data_dir.is_relative_to(p.run_dir)):
            continue
        if not custody.has_record(root):
            if custody.started(root):
                rows.append(
                    (
                        what,
                        "-",
                        str(root),
                        "ok",
                        "no record yet (a run from before avgas kept one; the next run records it)",
                    )
                )
            continue
        bad = custody.verify(root)
        n = len(custody.read_record(root))
        if not bad:
            rows.append((what, "-", str(root / custody.RECORD), "ok", f"all {n} recorded files whole (sha256 match)"))
            continue
        named = "; ".join(f"{d.path} ({d.why}; written by {d.writer})" for d in bad)
        rows.append(
            (
                what,
                "-",
                str(root / custody.RECORD),
                "wrong",
                f"{len(bad)} of {n} recorded files damaged: {named}. The next `python -m avgas run` sets them "
                "aside and runs their notebooks again",
            )
        )
    return rows


def _input(p: Params, item: str, key: str, where: str, prepared: bool):
    """The resolved path of an ingestion input, or its row when it is unset or not there."""
    if not getattr(p, key):
        return (item, key, "-", *_absent(prepared, f"params key '{key}' is not set; {where}"))
    path = paths.resolve(getattr(p, key))
    if not path.exists():
        return (item, key, str(path), *_absent(prepared, f"not found; {where}"))
    return path


def _csv_row(p: Params, prepared: bool) -> tuple:
    item, key = "VGGSound csv (prepare-vggsound)", "vggsound_csv"
    path = _input(p, item, key, vggsound.CSV_WHERE, prepared)
    if isinstance(path, tuple):
        return path
    try:
        scan = vggsound.scan_csv(path)
    except vggsound.DataError as e:
        return item, key, str(path), "wrong", str(e)
    wanted = world.classes(p)
    mine = [r for r in scan.rows if r.label in wanted]
    per = {c: {"train": 0, "test": 0} for c in wanted}
    for r in mine:
        per[r.label][r.split] += 1
    short = [f"{c}: train {n['train']}, test {n['test']}" for c, n in per.items() if min(n.values()) < 2]
    detail = (
        f"{scan.lines} lines: {len(scan.rows)} rows, {len(mine)} of the {len(wanted)} needed classes, "
        f"{len(scan.duplicates)} duplicates, {len(scan.unparseable)} unparseable"
    )
    if scan.unparseable:
        n, why, _ = scan.unparseable[0]
        detail += f" (first: line {n}, {why}; prepare-vggsound lists them in skipped.csv)"
    if short:
        return (
            item,
            key,
            str(path),
            "wrong",
            (f"{detail}; too few rows (2 train and 2 test needed) for " + "; ".join(short)),
        )
    return item, key, str(path), "ok", detail


def _video_row(p: Params, prepared: bool) -> tuple:
    """The video folder: its video files and tar / tar.gz archives (an archive's members are known
    once prepare-vggsound has read it to its end: it is not opened here, they can be hundreds of GB)."""
    item, key = "VGGSound videos (prepare-vggsound)", "video_dir"
    path = _input(p, item, key, vggsound.VIDEO_WHERE, prepared)
    if isinstance(path, tuple):
        return path
    if not path.is_dir():
        return item, key, str(path), "wrong", f"not a folder; {vggsound.VIDEO_WHERE}"
    names = {e.name for e in os.scandir(path) if e.name.endswith(vggsound.VIDEO_SUFFIXES)}
    archives = vggsound.archives_in(path)
    if not names and not archives:
        return (
            item,
            key,
            str(path),
            "wrong",
            (
                f"no video files ({', '.join(vggsound.VIDEO_SUFFIXES)}) or archives "
                f"({', '.join(vggsound.ARCHIVE_SUFFIXES)}) in it; {vggsound.VIDEO_WHERE}"
            ),
        )
    stems = {vggsound.video_stem(n) for n in names}
    detail = f"{len(names)} video files"
    unread = 0
    if archives:
        state = _archive_state(p)
        read = [a for a in archives if (state.get(a.name) or {}).get("complete")]
        unread = len(archives) - len(read)
        for a in read:
            stems |= set(state[a.name]["members"])
        detail += (
            f", {len(archives)} archives ({sum(a.stat().st_size for a in archives) / 1e9:.1f} GB; "
            f"{len(read)} read to their end by prepare-vggsound, {unread} not yet: their members are not counted)"
        )
    try:
        rows = (
            [r for r in vggsound.read_csv(paths.resolve(p.vggsound_csv)) if r[2] in world.classes(p)]
            if p.vggsound_csv
            else []
        )
    except vggsound.DataError:
        rows = []
    if rows:
        found = sum(any(s in stems for s in vggsound.candidate_stems(y, s)) for y, s, _, _ in rows)
        detail += f"; {found} of the csv's {len(rows)} clips of the needed classes"
        if found == 0 and not unread:
            return item, key, str(path), "wrong", detail + " (none found under either naming)"
    return item, key, str(path), "ok", detail


def _archive_state(p: Params) -> dict:
    f = p.data.archives
    try:
        return json.loads(f.read_text()) if f.is_file() else {}
    except ValueError:
        return {}


def duplicates_row(p: Params) -> tuple:
    """Duplicate clips (the same video under two ids): what prepare-vggsound found and left out, or,
    for the synthetic world, the same check run on its clips (it should find none)."""
    item, key = "duplicate clips", "data_root"
    if p.world == "vggsound":
        f = p.data.ingest
        if not f.is_file():
            return item, key, str(f), "ok", "looked for by prepare-vggsound (not run yet)"
        try:
            record = json.loads(f.read_text())
        except ValueError:
            return item, key, str(f), "wrong", "ingest.json cannot be read: run prepare-vggsound again"
        if "duplicate_groups" not in record:
            return item, key, str(f), "wrong", "prepared before duplicates were looked for: run prepare-vggsound again"
        groups = record["duplicate_groups"]
        left = sum(len(g["dropped"]) for g in groups)
        return (
            item,
            key,
            str(f),
            "ok",
            (
                f"{len(groups)} groups of the same clip under other ids found at ingestion; {left} clips left out "
                "(one of each group kept; the splits are made over groups)"
            ),
        )
    if not p.metadata_path.is_file():
        return item, key, str(p.data_dir), "ok", "looked for once the synthetic world is generated"
    try:
        cat = data.catalogue(p, screen=False)
        groups = duplicates.of_folder(p.data_dir, list(cat["stem"]), dict(zip(cat["stem"], cat["image"]))).groups
    except (data.DataError, OSError, RuntimeError) as e:
        return item, key, str(p.data_dir), "wrong", str(e).splitlines()[0]
    if groups:
        return (
            item,
            key,
            str(p.data_dir),
            "wrong",
            (
                f"{len(groups)} groups of clips share their sound (e.g. {groups[0]['kept']} and "
                f"{groups[0]['dropped'][0]}): the synthetic world should have none"
            ),
        )
    return item, key, str(p.data_dir), "ok", f"none among the {len(cat)} clips (audio fingerprint and frame hash)"


def _frames_row(p: Params, prepared: bool) -> tuple:
    item, key = "frame json (prepare-vggsound)", "frames_json"
    if not p.frames_json:
        return item, key, "-", "ok", "middle frames (frames_json: null)"
    path = paths.resolve(p.frames_json)
    if not path.exists():
        return (item, key, str(path), *_absent(prepared, f"not found; {vggsound.FRAMES_WHERE}"))
    try:
        frames = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        return item, key, str(path), "wrong", f"not a readable JSON file ({str(e).splitlines()[0][:120]})"
    if not isinstance(frames, dict):
        return (
            item,
            key,
            str(path),
            "wrong",
            (f"a JSON {type(frames).__name__}, expected an object (clip stem -> frame numbers)"),
        )
    return item, key, str(path), "ok", f"frame numbers for {len(frames)} clips"


def _absent(prepared: bool, detail: str) -> tuple[str, str]:
    """An ingestion input that is not there: missing, unless the data is already prepared."""
    if prepared:
        return "ok", f"{detail} (needed only to prepare the data again; it is prepared)"
    return "missing", detail


def _ingest_rows(p: Params, prepared: bool) -> list[tuple]:
    """The inputs of prepare-vggsound: VGGSound's csv, the videos, the frame json, and that none
    of them is one of its outputs."""
    rows = [_csv_row(p, prepared), _video_row(p, prepared), _frames_row(p, prepared)]
    try:
        vggsound.check_apart(p)
    except vggsound.DataError as e:
        rows.append(("ingestion inputs apart from outputs", "-", str(p.data_dir), "wrong", str(e)))
    return rows


def check(p: Params, sample: int | None = 50) -> pd.DataFrame:
    """One row per thing the run needs. `sample`: clips whose audio and image are read in full
    (None: every clip); every wav's header is read in any case."""
    rows = []
    try:
        dev = p.torch_device
        rows.append(("device", "device", str(dev), "ok", f"params device: {p.device}"))
    except ParamsError as e:
        rows.append(("device", "device", p.device, "wrong", str(e)))
    if p.world == "vggsound":
        data_rows = _data_rows(p, sample)
        rows += data_rows
        rows += _ingest_rows(p, prepared=all(r[3] == "ok" for r in data_rows))
        ff = shutil.which("ffmpeg")
        rows.append(
            (
                "ffmpeg (prepare-vggsound)",
                "-",
                ff or "",
                "ok" if ff else "missing",
                "" if ff else "apt-get install ffmpeg / conda install ffmpeg",
            )
        )
    else:
        rows.append(
            (
                "synthetic world",
                "data_root",
                str(p.data_dir),
                "ok",
                "present" if p.metadata_path.is_file() else "generated by notebook 01",
            )
        )
    rows.append(duplicates_row(p))
    groups, unseen = p.groups(), p.unseen()
    rows.append(
        (
            "source groups",
            "sources",
            f"{p.sources} sources per mixture",
            "ok",
            f"{len(groups)} groups of {p.sources} classes from 'combinations' (e.g. {' + '.join(groups[0])}); "
            "each class needs clips in train, val and test"
            + (f"; {len(unseen)} unseen pairings (unseen_pairs) from the test clips" if unseen else "")
            + (
                f"; unseen_pairs ({p.unseen_pairs}) is a two-source question and is not used here"
                if p.unseen_pairs and p.sources != 2
                else ""
            ),
        )
    )
    for key in WEIGHTS:
        status, detail = _check_weight(p, key)
        if p.world == "vggsound" and status == "ok":  # which file the key expects, even when it is found
            detail = f"{detail}; expects {checkpoints.SOURCES[key][0]}"
        shown = "-" if p.world == "synthetic" and getattr(p, key) is None and key in JUDGES else str(p.weight_path(key))
        rows.append((key.replace("_", " "), key, shown, status, detail))
    rows += _own_checkpoint_rows(p)
    rows += _record_rows(p)
    return pd.DataFrame(rows, columns=["item", "params key", "path", "status", "detail"]).set_index("item")

"""VGGSound ingestion: from `vggsound.csv` and the downloaded videos to the project's data layout.

For every csv row of a class the combinations need, the clip's video is found (the public mirror's
`<ytid>_<start_seconds:06d>.mp4`, or Sound2Scene's `<ytid>_<start_ms>_<end_ms>.mp4`) in `video_dir`
or in the tar / tar.gz archives there, its audio is decoded by ffmpeg to 16 kHz mono wav, and one
frame is written as jpg: the frame on screen at the time of the best frame of Sound2Scene's
`top1_boxes_top10_moments.json` (its numbers count at 10 fps, from `frame_index_base`; mapped to a
time, so a video at any rate gives its frame of that moment), or the middle frame when the clip has
no entry or the entry is past the video's end (counted as a fallback). Work is spread over a process
pool and is resumable: a clip whose wav and jpg exist is not redone. Corrupt, truncated, silent,
non-finite, too-short or missing clips and unreadable frames are skipped with a reason in
`skipped.csv`; the others go on.

Archives are streamed member by member (`tarfile`'s stream mode; never unpacked whole): a needed
member is copied to `<data_root>/.staging/`, decoded by a worker and deleted, and no more members
are unpacked than there are clips in flight, so the extra disk is at most one member per worker
(`peak_staged_bytes` in ingest.json). An archive read to its end is recorded in `archives.json`
(its size, time, video members and skips) and not opened again while it is unchanged and none of
its clips is missing; a truncated or corrupt archive is a logged skip (`bad_archives`), its readable
part used.

The same clip under two ids (duplicates.py: its sound, or its frame with a sound alike) is kept
once: the first in the csv's order; the others are listed in the skip-list and the groups in
`ingest.json`, and the splits are made over groups (`data.split_over_groups`).

Every line of the csv is accounted for: a clip of a needed class (ingested, or skipped with its
reason), a row of another class, a duplicate of an earlier row (ingested once), a header, blank or
comment line, or an unparseable line (in `skipped.csv` with its line number). Each line is parsed on
its own, so a stray quote damages only its own line.

The inputs (`vggsound_csv`, `video_dir`, `frames_json`) are never written: paths that overlap the
outputs are refused before any work, the inputs are registered with `paths.protect`, the csv and
json outputs are written atomically, and one ingestion at a time holds the data folder. Killing the
ingestion (SIGTERM, Ctrl-C, or SIGKILL) takes its worker processes and their ffmpeg with it.
"""

from __future__ import annotations

import bisect
import csv
import ctypes
import functools
import io
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zlib
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from PIL import Image
from tqdm.auto import tqdm

from avgas import custody, duplicates, paths, world
from avgas import data as data_mod
from avgas.data import CsvScan, DataError, Row
from avgas.params import INGEST_INPUT_KEYS, Params
from avgas.runfolder import DataFolder
from avgas.spectrogram import SR, wave_problem

log = logging.getLogger("avgas")

FPS = 10  # the frame numbers of top1_boxes_top10_moments.json count at 10 fps
VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".avi")
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz")
SKIP_COLUMNS = ["stem", "ytid", "start_seconds", "label", "reason", "line"]
CSV_WHERE = (
    "vggsound.csv from the VGGSound page, www.robots.ox.ac.uk/~vgg/data/vggsound/ "
    "(ytid,start_seconds,label,split; no header)"
)
VIDEO_WHERE = (
    "the folder of VGGSound's videos, <ytid>_<start:06d>.mp4 (public mirrors) or "
    "<ytid>_<ms>_<ms+10000>.mp4 (Sound2Scene's), or of tar / tar.gz archives of them"
)
FRAMES_WHERE = "Sound2Scene's top1_boxes_top10_moments.json; null = each clip's middle frame"


@dataclass
class Ingested:
    clips: int  # distinct rows of the needed classes in the csv (each ends up ok or skipped)
    ok: int  # clips in the layout (this call or before)
    reused: int  # of which already done before this call
    skipped: int  # lines in skipped.csv: skipped clips + unparseable csv lines
    fallbacks: int  # frames taken from the middle because the json had no entry
    seconds: float
    skip_list: Path
    reasons: dict
    # how every line of the csv was used: lines = clips + other_classes + duplicates + unparseable
    #                                            + header + blank + comments
    lines: int = 0
    other_classes: int = 0  # well-formed rows of classes the combinations do not need
    duplicates: int = 0  # rows repeating an earlier row (same ytid, start and label): ingested once
    unparseable: int = 0  # lines that are not a ytid,start_seconds,label,split row (in skipped.csv)
    conflicts: int = 0  # clips of the needed classes skipped because the csv gives them two labels
    header: int = 0
    blank: int = 0
    comments: int = 0
    # the same clip under two ids (duplicates.py): groups found, and their clips left out (in skipped.csv)
    duplicate_groups: int = 0
    duplicate_clips: int = 0
    # tar / tar.gz archives in video_dir: how many, how many opened this call (the others were read
    # to their end before), and the unreadable ones (name -> why; their readable part is used)
    archives: int = 0
    archives_read: int = 0
    bad_archives: dict = field(default_factory=dict)
    peak_staged_bytes: int = 0  # archive members on disk at once, at most (<= workers members)
    peak_staged_files: int = 0
    processed: int = 0  # clips decoded by this call

    @property
    def clips_per_second(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else float("nan")

    def csv_line(self) -> str:
        """How the csv's lines were used, in words (each line counted once)."""
        extra = f" ({self.conflicts} with two labels, skipped)" if self.conflicts else ""
        return (
            f"csv: {self.lines} lines = {self.clips} clips of the needed classes{extra} + {self.other_classes} "
            f"rows of other classes + {self.duplicates} duplicates (ingested once) + {self.unparseable} "
            f"unparseable (in the skip-list) + {self.header + self.blank + self.comments} header/blank/comment"
        )

    def summary(self) -> str:
        """The one-paragraph result of prepare-vggsound, as the command prints it."""
        parts = (
            f" ({self.skipped - self.unparseable} clips, {self.unparseable} unparseable csv lines)"
            if self.unparseable
            else ""
        )
        dup = (
            f"\nduplicates: {self.duplicate_groups} groups of the same clip under two ids; "
            f"{self.duplicate_clips} clips left out (one of each group kept; in the skip-list)"
        )
        arc = (
            f"\narchives: {self.archives} in the video folder, {self.archives_read} read this time "
            f"(at most {self.peak_staged_files} members, {self.peak_staged_bytes / 1e6:.1f} MB, unpacked at once)"
            + (f"; unreadable, skipped: {self.bad_archives}" if self.bad_archives else "")
            if self.archives
            else ""
        )
        return (
            f"{self.ok} of {self.clips} clips in the layout ({self.reused} from before), {self.skipped} skipped"
            f"{parts} {self.reasons or ''}, {self.fallbacks} middle-frame fallbacks; {self.clips_per_second:.1f} "
            f"clips/s; skip-list: {self.skip_list}\n{self.csv_line()}{dup}{arc}"
        )


# ---------------------------------------------------------------------------------------- the csv


def scan_csv(path: Path) -> CsvScan:
    """VGGSound's csv, every line sorted into one kind (data.scan_csv), named by its params key."""
    return data_mod.scan_csv(path, "vggsound_csv", CSV_WHERE)


def read_csv(path: Path) -> list[tuple[str, int, str, str]]:
    """The csv's well-formed rows (ytid, start_seconds, label, split), each once."""
    return [r.tuple for r in scan_csv(path).rows]


def _unparseable_entry(n: int, why: str, fields: list[str]) -> tuple:
    f = (fields + ["", "", ""])[:3]
    return ("", f[0], f[1], f[2], f"unparseable csv line {n}: {why}", n)


def _kind(reason: str) -> str:
    """The kind of a skip reason: its words before the details."""
    return "unparseable csv line" if reason.startswith("unparseable csv line") else reason.split(" (")[0]


# ---------------------------------------------------------------------------- inputs and outputs


def _outputs(p: Params) -> list[tuple[str, Path]]:
    d = p.data
    return [
        ("metadata_csv", p.metadata_path),
        ("data_root", d.skipped),
        ("data_root", d.ingest),
        ("data_root", d.archives),
        ("data_root", d.fingerprints),
        ("data_root", d.staging),  # the archive members in flight, one per worker at most
        ("data_root", d.audios),
        ("data_root", d.images),
        ("data_root", d.root / custody.LOCK),
    ]


def check_apart(p: Params) -> None:
    """Refuse params whose ingestion outputs would land on (or in) one of its inputs."""
    for ikey in INGEST_INPUT_KEYS:
        value = getattr(p, ikey)
        if not value:
            continue
        inp = paths.resolve(value)
        for okey, out in _outputs(p):
            if paths.overlap(inp, out):
                how = (
                    "is the same path as"
                    if paths.same_or_inside(inp, out) and paths.same_or_inside(out, inp)
                    else ("is inside" if paths.same_or_inside(inp, out) else "contains")
                )
                raise DataError(
                    f"prepare-vggsound would write {out} (params key '{okey}'), but your input {inp} "
                    f"(params key '{ikey}') {how} it; give them paths apart, e.g. metadata_csv: "
                    "<data_root>/metadata.csv and the VGGSound csv, videos and frame json outside "
                    "data_root's audios/ and images/"
                )


def _load_frames(p: Params) -> dict:
    if not p.frames_json:
        return {}
    f = paths.resolve(p.frames_json)
    if not f.is_file():
        raise DataError(f"{f}: frame json not found (params key 'frames_json'; {FRAMES_WHERE})")
    try:
        frames = json.loads(f.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise DataError(
            f"{f}: not a readable JSON file (params key 'frames_json'; {FRAMES_WHERE}): {str(e).splitlines()[0][:160]}"
        ) from None
    if not isinstance(frames, dict):
        raise DataError(
            f"{f}: the frame json must map clip stems to frame numbers, got a "
            f"{type(frames).__name__} (params key 'frames_json')"
        )
    return frames


# ----------------------------------------------------------------------- processes die together

_LIBC = None


def _die_with_parent(parent_pid: int | None = None) -> None:
    """Linux: have the kernel SIGKILL this process when its parent dies (prctl PR_SET_PDEATHSIG),
    so that killing the ingestion, even with SIGKILL, leaves no worker or ffmpeg behind."""
    global _LIBC
    if sys.platform.startswith("linux"):
        try:
            if _LIBC is None:
                _LIBC = ctypes.CDLL(None, use_errno=True)
            _LIBC.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)  # the parent died before the line above took effect


def _worker_init(parent_pid: int) -> None:
    _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the pool
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler, inherited by fork


class _Stopped(BaseException):
    """SIGTERM reached the ingestion: stop the pool, keep what is done."""


def _on_sigterm(signum, frame):
    raise _Stopped()


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    procs = list((getattr(pool, "_processes", None) or {}).values())
    for proc in procs:
        try:
            proc.kill()  # its ffmpeg dies with it (PR_SET_PDEATHSIG)
        except (OSError, ValueError):
            pass
    for proc in procs:  # gone before we return: a forked worker holds the data folder's lock too
        try:
            proc.join(timeout=10)
        except (OSError, ValueError, AssertionError):
            pass
    pool.shutdown(wait=False, cancel_futures=True)


def _ffmpeg() -> str:
    exe = shutil.which("ffmpeg")
    if exe is None or shutil.which("ffprobe") is None:
        raise DataError(
            f"{'ffmpeg' if exe is None else 'ffprobe'} not found: it decodes the VGGSound videos (apt-get install "
            "ffmpeg, or conda install ffmpeg; environment.yml has it)"
        )
    return exe


# ------------------------------------------------------------------------------- frames by time


def frame_time(number: int, base: int = 0) -> float:
    """The time (s from the clip's start) of a frame number of the frame json, which counts at 10 fps."""
    return (int(number) - base) / FPS


def frame_times(video: Path, ffprobe: str | None = None) -> list[float]:
    """The presentation times of a video's frames, from its first frame (s), by ffprobe: the packets'
    timestamps (no decoding), or the decoded frames' when the container gives none."""
    ffprobe = ffprobe or shutil.which("ffprobe") or "ffprobe"
    for entry in ("packet=pts_time", "frame=best_effort_timestamp_time"):
        ok, out = _run(
            [ffprobe, "-v", "error", "-select_streams", "v:0", "-show_entries", entry, "-of", "csv=p=0", str(video)],
            keep_stdout=True,
        )
        times = []
        for line in out.splitlines() if ok else []:
            try:
                times.append(float(line.strip().strip(",")))
            except ValueError:
                continue  # N/A
        if times:
            times.sort()
            return [t - times[0] for t in times]
    return []


def frame_at(times: list[float], t: float) -> int | None:
    """The number (from 0, in presentation order) of the frame on screen at time t, whatever the
    video's rate: the last frame that starts at or before t. None when t is before the start or past
    the last frame's end (its duration: the video's median frame interval)."""
    if not times or t < 0:
        return None
    step = float(np.median(np.diff(times))) if len(times) > 1 else 1 / FPS
    if t >= times[-1] + step - 1e-3:
        return None
    return max(0, bisect.bisect_right(times, t + 1e-3) - 1)  # 1 ms: timestamps rounded to their time base


def _frame_command(ffmpeg: str, video: Path, number: int, out: Path) -> list[str]:
    """ffmpeg writing frame `number` (presentation order, from 0) as a JPEG: decoded up to it, so the
    frame is exact at any frame rate (a 10 s clip decodes in well under a second)."""
    return [ffmpeg, "-nostdin", "-v", "error", "-y", "-i", str(video), "-vf", f"select=eq(n\\,{int(number)})",
            "-frames:v", "1", "-q:v", "2", str(out)]  # fmt: skip


def _run(cmd: list[str], keep_stdout: bool = False) -> tuple[bool, str]:
    """(exit code 0, the last line of stderr; or stdout with keep_stdout)."""
    r = subprocess.run(
        cmd,
        check=False,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        preexec_fn=functools.partial(_die_with_parent, os.getpid()),
    )
    if keep_stdout:
        return r.returncode == 0, r.stdout or ""
    return r.returncode == 0, (r.stderr or "").strip().splitlines()[-1][:200] if r.stderr.strip() else ""


def candidate_stems(ytid: str, start_seconds: int) -> tuple[str, str, str]:
    """The file stems a clip's video may have: the public mirrors', Sound2Scene's, and a plain one."""
    return f"{ytid}_{int(start_seconds):06d}", world.stem_of(ytid, start_seconds), f"{ytid}_{int(start_seconds)}"


def video_stem(name: str) -> str | None:
    """The stem of a video file name (any folder part dropped), or None when it is not a video."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    suffix = next((s for s in VIDEO_SUFFIXES if base.lower().endswith(s)), None)
    return base[: -len(suffix)] if suffix else None


def find_video(video_dir: Path, ytid: str, start_seconds: int) -> Path | None:
    for stem in candidate_stems(ytid, start_seconds):
        for suf in VIDEO_SUFFIXES:
            f = video_dir / f"{stem}{suf}"
            if f.is_file():
                return f
    return None


def ingest_clip(job: dict) -> dict:
    """One clip: wav + jpg, or a reason. Runs in a worker process; writes atomically."""
    ffmpeg, video = job["ffmpeg"], Path(job["video"])
    wav, jpg = Path(job["wav"]), Path(job["jpg"])
    out = {"stem": job["stem"], "ok": False, "reason": "", "fallback": False}
    with tempfile.TemporaryDirectory() as tmp:
        a = Path(tmp) / "a.wav"
        ok, err = _run(
            [
                ffmpeg,
                "-nostdin",
                "-v",
                "error",
                "-y",
                "-i",
                str(video),
                "-t",
                str(job["clip_seconds"]),
                "-vn",
                "-ac",
                "1",
                "-ar",
                str(SR),
                "-f",
                "wav",
                str(a),
            ]
        )
        if not ok or not a.is_file() or a.stat().st_size <= 44:
            out["reason"] = f"no decodable audio ({err or 'empty output'})"
            return out
        try:
            wave, _ = sf.read(a, dtype="float32")
        except Exception as e:  # noqa: BLE001 - any unreadable decode is a skip, not a crash
            out["reason"] = f"unreadable audio ({type(e).__name__})"
            return out
        why = wave_problem(wave, SR, job["min_seconds"])  # the same rule as every later load
        if why:
            out["reason"] = why
            return out
        seconds = len(wave) / SR
        times = frame_times(video, job.get("ffprobe"))
        if not times:
            out["reason"] = "unreadable frame (no video frames)"
            return out
        frames = job["frames"]
        number = frame_at(times, frame_time(frames[0], job["frame_index_base"])) if frames else None
        if number is None:  # no entry, or a frame number past the end: the middle frame, counted
            out["fallback"] = True
            number = frame_at(times, min(seconds, job["clip_seconds"]) / 2)
            number = len(times) // 2 if number is None else number
        f = Path(tmp) / "f.jpg"
        ok, err = _run(_frame_command(ffmpeg, video, number, f))
        try:
            if not ok or not f.is_file():
                raise OSError(err or "no frame written")
            Image.open(f).verify()
        except Exception as e:  # noqa: BLE001
            out["reason"] = f"unreadable frame ({str(e)[:120]})"
            return out
        out["fingerprint"] = duplicates.Fingerprint(duplicates.audio_bits(wave, SR), duplicates.image_bits(f)).to_json()
        wav.parent.mkdir(parents=True, exist_ok=True)
        jpg.parent.mkdir(parents=True, exist_ok=True)
        os.replace(f, jpg.with_suffix(".tmp.jpg"))
        sf.write(wav.with_suffix(".tmp.wav"), wave, SR, subtype="PCM_16")
        os.replace(wav.with_suffix(".tmp.wav"), wav)  # the wav last: its presence means "done"
        os.replace(jpg.with_suffix(".tmp.jpg"), jpg)
    out["ok"] = True
    return out


# ------------------------------------------------------------------------------------ archives


def archives_in(video_dir: Path) -> list[Path]:
    """The tar / tar.gz archives directly in the video folder, by name."""
    return sorted(f for f in video_dir.iterdir() if f.name.lower().endswith(ARCHIVE_SUFFIXES) and f.is_file())


class _ArchiveBroken(Exception):
    """An archive cannot be read on (truncated, corrupt): a logged skip."""


_ARCHIVE_ERRORS = (tarfile.TarError, EOFError, zlib.error, OSError)


def _members(archive: Path):
    """(member name, readable file) of every regular file of an archive, streamed in order: nothing is
    unpacked, and nothing is held but the current member. A damaged archive raises _ArchiveBroken."""
    try:
        with tarfile.open(archive, mode="r|*") as tf:
            for member in tf:
                if member.isfile():
                    yield member.name, tf.extractfile(member)
    except _ARCHIVE_ERRORS as e:
        raise _ArchiveBroken(f"{type(e).__name__}: {' '.join(str(e).split())[:160]}") from None


def _copy_member(src, dest: Path) -> int:
    """Copy one member to dest; a read error is the archive's (_ArchiveBroken), a write error (a
    full disk) is not caught."""
    n = 0
    with open(dest, "wb") as out:
        while True:
            try:
                chunk = src.read(1 << 20)
            except _ARCHIVE_ERRORS as e:
                raise _ArchiveBroken(f"{type(e).__name__}: {' '.join(str(e).split())[:160]}") from None
            if not chunk:
                return n
            out.write(chunk)
            n += len(chunk)


def _stamp(f: Path) -> dict:
    st = f.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


class _Work:
    """The worker pool, fed one clip at a time: at most `limit` clips in flight, so at most `limit`
    archive members are unpacked on disk at once (each is deleted when its clip is done)."""

    def __init__(self, workers: int, on_result, progress):
        self.limit, self.on_result, self.bar = workers, on_result, progress
        self.pool: ProcessPoolExecutor | None = None
        self.inflight: dict = {}
        self.staged_bytes = self.peak_bytes = self.peak_files = self.processed = 0

    def submit(self, job: dict) -> None:
        while len(self.inflight) >= self.limit:
            self._collect()
        if self.pool is None:
            self.pool = ProcessPoolExecutor(max_workers=self.limit, initializer=_worker_init, initargs=(os.getpid(),))
        self.inflight[self.pool.submit(ingest_clip, {k: v for k, v in job.items() if k not in _LOCAL})] = job

    def staged(self, n: int) -> None:
        """A member of n bytes was unpacked: it is in flight next."""
        self.staged_bytes += n
        self.peak_bytes = max(self.peak_bytes, self.staged_bytes)
        files = sum(1 for j in self.inflight.values() if j.get("staged")) + 1
        self.peak_files = max(self.peak_files, files)

    def room(self) -> None:
        """Wait until one more clip may be put in flight (before unpacking its member)."""
        while len(self.inflight) >= self.limit:
            self._collect()

    def _collect(self) -> None:
        done, _ = wait(list(self.inflight), return_when=FIRST_COMPLETED)
        for fut in done:
            job = self.inflight.pop(fut)
            try:
                r = fut.result()
            except Exception as e:  # noqa: BLE001 - a crashed worker skips its clip, the rest go on
                r = {"stem": job["stem"], "ok": False, "reason": f"worker error ({type(e).__name__}: {e})"[:200]}
            if job.get("staged"):
                Path(job["video"]).unlink(missing_ok=True)
                self.staged_bytes -= job["staged"]
            self.processed += 1
            self.bar.update(1)
            self.on_result(job, r)

    def drain(self) -> None:
        while self.inflight:
            self._collect()

    def stop(self) -> None:
        if self.pool is not None:
            _stop_pool(self.pool)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)


_LOCAL = ("row", "archive", "staged")  # job keys the worker does not need


# -------------------------------------------------------------------------------------- prepare


def prepare(p: Params, workers: int | None = None, progress: bool = True) -> Ingested:
    """Ingest the clips of the classes the params' combinations need into p.data_dir."""
    check_apart(p)  # before anything is written
    for key in INGEST_INPUT_KEYS:
        if getattr(p, key):
            paths.protect(paths.resolve(getattr(p, key)), key)
    ffmpeg = _ffmpeg()
    if not p.video_dir or not paths.resolve(p.video_dir).is_dir():
        raise DataError(f"video folder {p.video_dir!r} not found (params key 'video_dir': {VIDEO_WHERE})")
    if not p.vggsound_csv:
        raise DataError(f"no VGGSound csv given (params key 'vggsound_csv': {CSV_WHERE})")
    scan = scan_csv(paths.resolve(p.vggsound_csv))
    frames = _load_frames(p)
    try:
        with paths.exclusive(p.data_dir, "prepare-vggsound"):  # one ingestion per data folder
            return _ingest(p, scan, frames, ffmpeg, workers, progress)
    except paths.BusyError as e:
        raise DataError(
            f"{str(e).split(';')[0]}; wait for it to end (what it finishes is reused, not redone)"
        ) from None


def _ingest(p: Params, scan: CsvScan, frames: dict, ffmpeg: str, workers: int | None, progress: bool) -> Ingested:
    ing = _Ingestion(p, scan, frames, ffmpeg)
    t0 = time.perf_counter()
    work = ing.decode(workers or p.ingest_workers or max(1, (os.cpu_count() or 2)), progress)
    ing.skip_missing()
    return ing.finish(work, time.perf_counter() - t0)


def _skip_entry(stem: str, row: Row, why: str) -> tuple:
    """A skipped.csv line for a clip of the csv."""
    ytid, start, label, _ = row.tuple
    return (stem, ytid, start, label, why, row.line)


class _Ingestion:
    """One prepare-vggsound call: the clips the csv asks for, as decoding jobs (videos in the folder;
    members of its archives, streamed to a staging folder), and the record of what was kept and why
    the rest was skipped. `archives.json` remembers the archives read to their end, so a later call
    opens only those that may hold a clip still missing."""

    def __init__(self, p: Params, scan: CsvScan, frames: dict, ffmpeg: str):
        self.p, self.scan, self.root = p, scan, p.data_dir
        self.wanted = set(world.classes(p))
        self.skipped = [_unparseable_entry(n, why, fields) for n, why, fields in scan.unparseable]
        self.rows = [r for r in scan.rows if r.label in self.wanted]
        self.results: list[dict] = []
        self.reused = self.conflicts = 0
        self.loose: list[dict] = []  # clips with a video file in the folder
        self.pending: dict[str, dict] = {}  # clips to look for in the archives
        self._plan(frames, ffmpeg)
        self.by_name = {
            c: stem for stem, j in self.pending.items() for c in candidate_stems(j["row"].ytid, j["row"].start)
        }
        self.archives = archives_in(paths.resolve(p.video_dir))
        self.state_file = p.data.archives
        try:
            self.state = json.loads(self.state_file.read_text()) if self.state_file.is_file() else {}
        except ValueError:
            self.state = {}  # unreadable: every archive is read again
        self.staging = p.data.staging
        self.bad_archives: dict[str, str] = {}
        self.opened: list[str] = []
        self.outstanding: dict[str, int] = {}
        self.streamed: set[str] = set()

    # ------------------------------------------------------------------------------ the jobs

    def _plan(self, frames: dict, ffmpeg: str) -> None:
        labels: dict[tuple[str, int], list[Row]] = {}
        for r in self.scan.rows:
            labels.setdefault((r.ytid, r.start), []).append(r)
        video_dir = paths.resolve(self.p.video_dir)
        for row in self.rows:
            ytid, start, label, split = row.tuple
            stem = world.stem_of(ytid, start)
            same = labels[(ytid, start)]
            if len(same) > 1:  # one clip, two labels: neither can be trusted
                self.conflicts += 1
                others = "; ".join(f"line {o.line}: {o.label!r}" for o in same if o is not row)
                self.skipped.append(_skip_entry(stem, row, f"conflicting labels (also {others})"))
                continue
            wav, jpg = self.p.data.audio(stem), self.p.data.image(stem)
            if wav.is_file() and jpg.is_file():
                self.reused += 1
                self.results.append({"stem": stem, "ok": True, "fallback": False, "row": row})
                continue
            job = self._job(row, stem, wav, jpg, frames, ffmpeg)
            video = find_video(video_dir, ytid, start)
            if video is not None:
                self.loose.append({**job, "video": str(video)})
            else:
                self.pending[stem] = job

    def _job(self, row: Row, stem: str, wav: Path, jpg: Path, frames: dict, ffmpeg: str) -> dict:
        key = next((k for k in (stem, f"{row.ytid}_{row.start:06d}", row.ytid) if k in frames), None)
        return {
            "ffmpeg": ffmpeg,
            "ffprobe": shutil.which("ffprobe"),
            "wav": str(wav),
            "jpg": str(jpg),
            "stem": stem,
            "frames": frames.get(key) if key else None,
            "frame_index_base": self.p.frame_index_base,
            "clip_seconds": 10.0,
            "min_seconds": self.p.min_clip_seconds,
            "row": row,
        }

    def save_state(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        paths.atomic_write_text(self.state_file, json.dumps(self.state, indent=1))

    def on_result(self, job: dict, r: dict) -> None:
        r["row"] = job["row"]
        arc = job.get("archive")
        if r["ok"]:
            self.results.append(r)
        else:
            self.skipped.append(_skip_entry(job["stem"], job["row"], r["reason"]))
        if arc is not None:
            if not r["ok"]:
                self.state[arc]["skipped"][job["stem"]] = r["reason"]
            self.outstanding[arc] -= 1
            if self.outstanding[arc] == 0 and arc in self.streamed:
                self.state[arc]["complete"] = True  # every clip of it done: a later call need not open it
                self.save_state()

    # ---------------------------------------------------------------------------- decoding

    def decode(self, workers: int, progress: bool) -> _Work:
        """Decode every job in worker processes: the folder's videos, then the archives' members."""

        shutil.rmtree(self.staging, ignore_errors=True)  # members a SIGKILLed ingestion left: never reused
        total = len(self.loose) + len(self.pending)
        bar = tqdm(total=total, desc="VGGSound clips", disable=not progress)
        work = _Work(workers, self.on_result, bar)
        main = threading.current_thread() is threading.main_thread()
        old = signal.signal(signal.SIGTERM, _on_sigterm) if main else None
        try:
            for job in self.loose:
                work.submit(job)
            for archive in self.archives:
                if not self.pending:
                    break
                self._archive(archive, work, bar)
            work.drain()
        except (KeyboardInterrupt, _Stopped) as e:
            work.stop()
            shutil.rmtree(self.staging, ignore_errors=True)
            if self.opened:
                self.save_state()  # the archives finished so far are not read again
            raise DataError(
                f"prepare-vggsound stopped by {'Ctrl-C' if isinstance(e, KeyboardInterrupt) else 'SIGTERM'} "
                f"after {work.processed} of {total} clips; the finished "
                "clips are kept: run the same command again to continue"
            ) from None
        except BaseException:
            work.stop()
            shutil.rmtree(self.staging, ignore_errors=True)
            raise
        else:
            work.close()
        finally:
            bar.close()
            if old is not None:
                signal.signal(signal.SIGTERM, old)
        shutil.rmtree(self.staging, ignore_errors=True)
        if self.opened:
            self.save_state()
        return work

    def _fresh(self, archive: Path) -> dict:
        """The archive's record when it was read to its end before and is unchanged since, else {}."""
        old = self.state.get(archive.name) or {}
        same = old.get("complete") and {k: old.get(k) for k in ("size", "mtime_ns")} == _stamp(archive)
        return old if same else {}

    def _known(self, fresh: dict, bar) -> bool:
        """True when an archive read to its end before holds no clip still needed: its members and
        their skips are known (the skips are taken from its record), so it is not opened again."""
        need = False
        for m in fresh["members"]:
            stem = self.by_name.get(m)
            if stem in self.pending:
                if stem in fresh["skipped"]:
                    j = self.pending.pop(stem)
                    self.skipped.append(_skip_entry(stem, j["row"], fresh["skipped"][stem]))
                    bar.update(1)
                else:
                    need = True  # its clip was deleted since, or its class is newly needed
        return not need

    def _archive(self, archive: Path, work: _Work, bar) -> None:
        """Stream one archive: each member a clip still needs is staged and decoded."""
        name = archive.name
        fresh = self._fresh(archive)
        if fresh and self._known(fresh, bar):
            return
        self.state[name] = {
            **_stamp(archive),
            "complete": False,
            "members": {},
            "skipped": dict(fresh.get("skipped", {})),
        }
        self.opened.append(name)
        self.outstanding[name] = 0
        self.staging.mkdir(parents=True, exist_ok=True)
        members = 0
        stream = _members(archive)
        try:
            for member, fh in stream:
                members += 1
                self._member(name, member, fh, work)
        except _ArchiveBroken as e:
            why = f"unreadable after {members} members ({e})"
            self.bad_archives[name] = why
            log.warning("skipping the rest of archive %s: %s", archive, why)
            return
        finally:
            stream.close()  # the archive's file, now (not when the generator is collected)
        self.streamed.add(name)
        if self.outstanding[name] == 0:
            self.state[name]["complete"] = True
            self.save_state()

    def _member(self, name: str, member: str, fh, work: _Work) -> None:
        m = video_stem(member)
        if m is None:
            return
        self.state[name]["members"][m] = member
        stem = self.by_name.get(m)
        if stem not in self.pending:
            return  # not needed, done, or taken from an earlier archive or the folder
        work.room()
        dest = self.staging / f"{stem}{member[member.rfind('.') :].lower()}"
        try:
            n = _copy_member(fh, dest)
        except _ArchiveBroken:
            dest.unlink(missing_ok=True)
            raise
        job = self.pending.pop(stem)
        work.staged(n)
        self.outstanding[name] += 1
        work.submit({**job, "video": str(dest), "archive": name, "staged": n})

    # ----------------------------------------------------------------------------- the record

    def skip_missing(self) -> None:
        """The clips found neither in the folder nor in its archives."""
        unreadable = (
            f"; {len(self.bad_archives)} unreadable archive(s): {', '.join(self.bad_archives)}"
            if self.bad_archives
            else ""
        )
        where = " in the folder or its archives" if self.archives else ""
        for stem, job in self.pending.items():
            why = f"missing video (no file matching either naming{where}"
            self.skipped.append(_skip_entry(stem, job["row"], why + unreadable + ")"))

    def _deduplicated(self):
        """The same clip under two ids: keep the first of each group (csv order), list the others."""
        self.results.sort(key=lambda r: r["row"].line)
        prints = _fingerprints(self.root, self.results)
        groups = duplicates.find([r["stem"] for r in self.results], prints)
        line_of = {r["stem"]: r["row"].line for r in self.results}
        kept = []
        for r in self.results:
            if r["stem"] in groups.dropped:
                first, by = groups.dropped[r["stem"]]
                why = f"duplicate clip (same {by} as {first}, csv line {line_of[first]}; kept once)"
                self.skipped.append(_skip_entry(r["stem"], r["row"], why))
            else:
                kept.append(r)
        return kept, groups

    def _write_lists(self, kept: list[dict]) -> list[tuple]:
        """skipped.csv (every skipped clip and line, with why) and the metadata csv of the kept clips."""
        self.root.mkdir(parents=True, exist_ok=True)
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(SKIP_COLUMNS)
        w.writerows(sorted(self.skipped, key=lambda s: s[-1]))
        paths.atomic_write_text(self.p.data.skipped, buf.getvalue())
        ok_rows = sorted(r["row"].tuple for r in kept)
        buf = io.StringIO()
        csv.writer(buf).writerows(ok_rows)
        paths.atomic_write_text(self.p.metadata_path, buf.getvalue())
        return ok_rows

    def _short(self, ok_rows: list[tuple]) -> dict:
        """Needed classes with fewer than 2 usable clips in train or in test."""
        counts: dict = {}
        for _, _, label, split in ok_rows:
            counts.setdefault(label, {"train": 0, "test": 0})
            counts[label][split if split in ("train", "test") else "train"] += 1
        return {
            c: counts.get(c, {"train": 0, "test": 0})
            for c in sorted(self.wanted)
            if min(counts.get(c, {"train": 0, "test": 0}).values()) < 2
        }

    def finish(self, work: _Work, seconds: float) -> Ingested:
        """Write skipped.csv, the metadata csv and ingest.json; refuse classes left too small."""
        kept, groups = self._deduplicated()
        ok_rows = self._write_lists(kept)
        skip_list = self.p.data.skipped
        reasons: dict = {}
        for entry in self.skipped:
            kind = _kind(entry[4])
            reasons[kind] = reasons.get(kind, 0) + 1
        scan = self.scan
        summary = Ingested(
            len(self.rows),
            len(kept),
            self.reused,
            len(self.skipped),
            sum(r.get("fallback", False) for r in kept),
            seconds,
            skip_list,
            reasons,
            lines=scan.lines,
            other_classes=len(scan.rows) - len(self.rows),
            duplicates=len(scan.duplicates),
            unparseable=len(scan.unparseable),
            conflicts=self.conflicts,
            header=scan.header,
            blank=scan.blank,
            comments=scan.comments,
            duplicate_groups=len(groups.groups),
            duplicate_clips=len(groups.dropped),
            archives=len(self.archives),
            archives_read=len(self.opened),
            bad_archives=self.bad_archives,
            peak_staged_bytes=work.peak_bytes,
            peak_staged_files=work.peak_files,
            processed=work.processed,
        )
        record = {
            **{k: v for k, v in summary.__dict__.items() if k != "skip_list"},
            "clips_per_second": summary.clips_per_second,
            "duplicate_lines": {str(n): first for n, first in list(scan.duplicates.items())[:1000]},
            "duplicate_groups": groups.groups,
            "duplicate_clip_groups": len(groups.groups),
        }
        paths.atomic_write_text(self.p.data.ingest, json.dumps(record, indent=1))
        short = self._short(ok_rows)
        if short:  # everything ingested is kept; the run cannot use these classes yet
            raise DataError(
                "too few usable clips (at least 2 in train and 2 in test needed) for: "
                + "; ".join(f"{c}: train {n['train']}, test {n['test']}" for c, n in short.items())
                + f". Ingested clips are kept; reasons of the skipped ones are in {skip_list}"
            )
        return summary


def _fingerprints(root: Path, results: list[dict]) -> list:
    """Each ingested clip's fingerprints (duplicates.py): from its worker, else from the cache in
    <data_root>/fingerprints.json (by the wav's size and time), else computed here."""
    f = DataFolder(root).fingerprints
    try:
        cache = json.loads(f.read_text()) if f.is_file() else {}
    except ValueError:
        cache = {}
    prints, new = [], {}
    for r in results:
        wav, jpg = DataFolder(root).audio(r["stem"]), DataFolder(root).image(r["stem"])
        st = wav.stat()
        stamp = [st.st_size, st.st_mtime_ns]
        if r.get("fingerprint") is not None:
            v = r["fingerprint"]
        elif (c := cache.get(r["stem"])) and c[:2] == stamp:
            v = c[2:]
        else:
            v = duplicates.fingerprint(wav, jpg).to_json()
        new[r["stem"]] = stamp + list(v)
        prints.append(duplicates.Fingerprint.from_json(v))
    if new != cache:
        paths.atomic_write_text(f, json.dumps(new))
    return prints


def report(p: Params):
    """What the last ingestion into p.data_dir did (for notebook 01): a one-row summary and the
    skip-list's reasons with an example clip each; None when nothing was ingested there."""
    f = p.data.ingest
    if not f.is_file():
        return None
    s = json.loads(f.read_text())
    summary = pd.DataFrame(
        [
            {k: s[k] for k in ("clips", "ok", "reused", "skipped", "fallbacks")}
            | {k: s.get(k, 0) for k in ("unparseable", "duplicates", "other_classes", "lines")}
            | {k: s.get(k, 0) for k in ("duplicate_groups", "duplicate_clips", "archives")}
            | {"clips/s": round(s["clips_per_second"], 2)}
        ],
        index=["prepare-vggsound"],
    )
    skipped = pd.read_csv(p.data.skipped) if p.data.skipped.is_file() else pd.DataFrame()
    if len(skipped):
        skipped["kind"] = skipped["reason"].astype(str).map(_kind)
        if "line" in skipped:
            skipped["stem"] = skipped["stem"].fillna("line " + skipped["line"].astype(str))
        skipped = skipped.groupby("kind").agg(
            clips=("stem", "size"), example=("stem", "first"), reason=("reason", "first")
        )
    return summary, skipped

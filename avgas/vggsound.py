"""VGGSound ingestion: from `vggsound.csv` and the downloaded videos to the project's data layout.

For every csv row of a class the combinations need, the clip's video is found (the public mirror's
`<ytid>_<start_seconds:06d>.mp4`, or Sound2Scene's `<ytid>_<start_ms>_<end_ms>.mp4`), its audio is
decoded by ffmpeg to 16 kHz mono wav, and one frame is written as jpg: the best frame of
Sound2Scene's `top1_boxes_top10_moments.json` (frame numbers at 10 fps; `frame_index_base` says
whether they count from 0 or 1), or the middle frame when the clip has no entry (counted as a
fallback). Work is spread over a process pool and is resumable: a clip whose wav and jpg exist is
not redone. Corrupt, truncated, silent, non-finite, too-short or missing clips and unreadable frames
are skipped with a reason in `skipped.csv`; the others go on.

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

import csv
import ctypes
import functools
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from avgas import data as data_mod
from avgas import paths, world
from avgas.data import CsvScan, DataError, Row
from avgas.params import Params
from avgas.spectrogram import SR, wave_problem

FPS = 10  # the frame numbers of top1_boxes_top10_moments.json count at 10 fps
VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".avi")
INPUT_KEYS = ("vggsound_csv", "video_dir", "frames_json")
SKIP_COLUMNS = ["stem", "ytid", "start_seconds", "label", "reason", "line"]
CSV_WHERE = (
    "vggsound.csv from the VGGSound page, www.robots.ox.ac.uk/~vgg/data/vggsound/ "
    "(ytid,start_seconds,label,split; no header)"
)
VIDEO_WHERE = (
    "the folder of VGGSound's videos, <ytid>_<start:06d>.mp4 (public mirrors) or "
    "<ytid>_<ms>_<ms+10000>.mp4 (Sound2Scene's)"
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

    @property
    def clips_per_second(self) -> float:
        done = self.ok - self.reused + self.skipped - self.unparseable
        return done / self.seconds if self.seconds > 0 else float("nan")

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
        return (
            f"{self.ok} of {self.clips} clips in the layout ({self.reused} from before), {self.skipped} skipped"
            f"{parts} {self.reasons or ''}, {self.fallbacks} middle-frame fallbacks; {self.clips_per_second:.1f} "
            f"clips/s; skip-list: {self.skip_list}\n{self.csv_line()}"
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
    root = p.data_dir
    return [
        ("metadata_csv", p.metadata_path),
        ("data_root", root / "skipped.csv"),
        ("data_root", root / "ingest.json"),
        ("data_root", root / "audios"),
        ("data_root", root / "images"),
        ("data_root", root / ".avgas.lock"),
    ]


def check_apart(p: Params) -> None:
    """Refuse params whose ingestion outputs would land on (or in) one of its inputs."""
    for ikey in INPUT_KEYS:
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
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        try:
            proc.kill()  # its ffmpeg dies with it (PR_SET_PDEATHSIG)
        except (OSError, ValueError):
            pass
    pool.shutdown(wait=False, cancel_futures=True)


def _ffmpeg() -> str:
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise DataError(
            "ffmpeg not found: it decodes the VGGSound videos (apt-get install ffmpeg, or "
            "conda install ffmpeg; environment.yml has it)"
        )
    return exe


def _frame_command(ffmpeg: str, video: Path, t: float, out: Path) -> list[str]:
    """ffmpeg writing the frame at t seconds as a JPEG (-ss before -i: seek by time, so a video
    under 10 fps gives its nearest frame, not an error)."""
    return [ffmpeg, "-nostdin", "-v", "error", "-y", "-ss", f"{t:.3f}", "-i", str(video), "-frames:v", "1",
            "-q:v", "2", str(out)]  # fmt: skip


def _run(cmd: list[str]) -> tuple[bool, str]:
    r = subprocess.run(
        cmd,
        check=False,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        preexec_fn=functools.partial(_die_with_parent, os.getpid()),
    )
    return r.returncode == 0, (r.stderr or "").strip().splitlines()[-1][:200] if r.stderr.strip() else ""


def find_video(video_dir: Path, ytid: str, start_seconds: int) -> Path | None:
    stems = (f"{ytid}_{int(start_seconds):06d}", world.stem_of(ytid, start_seconds), f"{ytid}_{int(start_seconds)}")
    for stem in stems:
        for suf in VIDEO_SUFFIXES:
            f = video_dir / f"{stem}{suf}"
            if f.is_file():
                return f
    return None


def ingest_clip(job: dict) -> dict:
    """One clip: wav + jpg, or a reason. Runs in a worker process; writes atomically."""
    import soundfile as sf
    from PIL import Image

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
        frames = job["frames"]
        if frames:
            t = max(0.0, (int(frames[0]) - job["frame_index_base"]) / FPS)
        else:
            out["fallback"] = True
            t = min(seconds, job["clip_seconds"]) / 2
        f = Path(tmp) / "f.jpg"
        ok, err = _run(_frame_command(ffmpeg, video, t, f))
        if (not ok or not f.is_file()) and frames:  # a frame number past the end: take the middle
            out["fallback"] = True
            ok, err = _run(_frame_command(ffmpeg, video, seconds / 2, f))
        try:
            if not ok or not f.is_file():
                raise OSError(err or "no frame written")
            Image.open(f).verify()
        except Exception as e:  # noqa: BLE001
            out["reason"] = f"unreadable frame ({str(e)[:120]})"
            return out
        wav.parent.mkdir(parents=True, exist_ok=True)
        jpg.parent.mkdir(parents=True, exist_ok=True)
        os.replace(f, jpg.with_suffix(".tmp.jpg"))
        sf.write(wav.with_suffix(".tmp.wav"), wave, SR, subtype="PCM_16")
        os.replace(wav.with_suffix(".tmp.wav"), wav)  # the wav last: its presence means "done"
        os.replace(jpg.with_suffix(".tmp.jpg"), jpg)
    out["ok"] = True
    return out


# -------------------------------------------------------------------------------------- prepare


def prepare(p: Params, workers: int | None = None, progress: bool = True) -> Ingested:
    """Ingest the clips of the classes the params' combinations need into p.data_dir."""
    check_apart(p)  # before anything is written
    for key in INPUT_KEYS:
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
    from tqdm.auto import tqdm

    video_dir = paths.resolve(p.video_dir)
    wanted = set(world.classes(p))
    root = p.data_dir
    skipped = [_unparseable_entry(n, why, fields) for n, why, fields in scan.unparseable]
    labels: dict[tuple[str, int], list[Row]] = {}
    for r in scan.rows:
        labels.setdefault((r.ytid, r.start), []).append(r)
    rows = [r for r in scan.rows if r.label in wanted]
    jobs, results, reused, conflicts = [], [], 0, 0
    for row in rows:
        ytid, start, label, split = row.tuple
        stem = world.stem_of(ytid, start)
        same = labels[(ytid, start)]
        if len(same) > 1:  # one clip, two labels: neither can be trusted
            conflicts += 1
            others = "; ".join(f"line {o.line}: {o.label!r}" for o in same if o is not row)
            skipped.append((stem, ytid, start, label, f"conflicting labels (also {others})", row.line))
            continue
        wav, jpg = root / "audios" / f"{stem}.wav", root / "images" / f"{stem}.jpg"
        if wav.is_file() and jpg.is_file():
            reused += 1
            results.append({"stem": stem, "ok": True, "fallback": False, "row": row})
            continue
        video = find_video(video_dir, ytid, start)
        if video is None:
            skipped.append((stem, ytid, start, label, "missing video (no file matching either naming)", row.line))
            continue
        key = next((k for k in (stem, f"{ytid}_{start:06d}", ytid) if k in frames), None)
        jobs.append(
            {
                "ffmpeg": ffmpeg,
                "video": str(video),
                "wav": str(wav),
                "jpg": str(jpg),
                "stem": stem,
                "frames": frames.get(key) if key else None,
                "frame_index_base": p.frame_index_base,
                "clip_seconds": 10.0,
                "min_seconds": p.min_clip_seconds,
                "row": row,
            }
        )
    t0 = time.perf_counter()
    workers = workers or p.ingest_workers or max(1, (os.cpu_count() or 2))
    if jobs:
        pool = ProcessPoolExecutor(max_workers=workers, initializer=_worker_init, initargs=(os.getpid(),))
        main = threading.current_thread() is threading.main_thread()
        old = signal.signal(signal.SIGTERM, _on_sigterm) if main else None
        try:
            futures = {pool.submit(ingest_clip, {k: v for k, v in j.items() if k != "row"}): j for j in jobs}
            for fut in tqdm(as_completed(futures), total=len(futures), desc="VGGSound clips", disable=not progress):
                j = futures[fut]
                try:
                    r = fut.result()
                except Exception as e:  # noqa: BLE001 - a crashed worker skips its clip, the rest go on
                    r = {
                        "stem": j["stem"],
                        "ok": False,
                        "reason": f"worker error ({type(e).__name__}: {e})"[:200],
                        "fallback": False,
                    }
                r["row"] = j["row"]
                if r["ok"]:
                    results.append(r)
                else:
                    ytid, start, label, _ = j["row"].tuple
                    skipped.append((j["stem"], ytid, start, label, r["reason"], j["row"].line))
        except (KeyboardInterrupt, _Stopped) as e:
            _stop_pool(pool)
            done = len(results) - reused
            raise DataError(
                f"prepare-vggsound stopped by {'Ctrl-C' if isinstance(e, KeyboardInterrupt) else 'SIGTERM'} "
                f"after {done} of {len(jobs)} clips; the finished clips are kept: run the same command "
                "again to continue"
            ) from None
        except BaseException:
            _stop_pool(pool)
            raise
        else:
            pool.shutdown(wait=True)
        finally:
            if old is not None:
                signal.signal(signal.SIGTERM, old)
    seconds = time.perf_counter() - t0
    root.mkdir(parents=True, exist_ok=True)
    skip_list = root / "skipped.csv"
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(SKIP_COLUMNS)
    w.writerows(sorted(skipped, key=lambda s: s[-1]))
    paths.atomic_write_text(skip_list, buf.getvalue())
    ok_rows = sorted(r["row"].tuple for r in results)
    buf = io.StringIO()
    csv.writer(buf).writerows(ok_rows)
    paths.atomic_write_text(p.metadata_path, buf.getvalue())
    reasons: dict = {}
    for entry in skipped:
        kind = _kind(entry[4])
        reasons[kind] = reasons.get(kind, 0) + 1
    counts: dict = {}
    for _, _, label, split in ok_rows:
        counts.setdefault(label, {"train": 0, "test": 0})
        counts[label][split if split in ("train", "test") else "train"] += 1
    short = {
        c: counts.get(c, {"train": 0, "test": 0})
        for c in sorted(wanted)
        if min(counts.get(c, {"train": 0, "test": 0}).values()) < 2
    }
    summary = Ingested(
        len(rows),
        len(results),
        reused,
        len(skipped),
        sum(r.get("fallback", False) for r in results),
        seconds,
        skip_list,
        reasons,
        lines=scan.lines,
        other_classes=len(scan.rows) - len(rows),
        duplicates=len(scan.duplicates),
        unparseable=len(scan.unparseable),
        conflicts=conflicts,
        header=scan.header,
        blank=scan.blank,
        comments=scan.comments,
    )
    record = {
        **{k: v for k, v in summary.__dict__.items() if k != "skip_list"},
        "clips_per_second": summary.clips_per_second,
        "duplicate_lines": {str(n): first for n, first in list(scan.duplicates.items())[:1000]},
    }
    paths.atomic_write_text(root / "ingest.json", json.dumps(record, indent=1))
    if short:  # everything ingested is kept; the run cannot use these classes yet
        raise DataError(
            "too few usable clips (at least 2 in train and 2 in test needed) for: "
            + "; ".join(f"{c}: train {n['train']}, test {n['test']}" for c, n in short.items())
            + f". Ingested clips are kept; reasons of the skipped ones are in {skip_list}"
        )
    return summary


def report(p: Params):
    """What the last ingestion into p.data_dir did (for notebook 01): a one-row summary and the
    skip-list's reasons with an example clip each; None when nothing was ingested there."""
    import pandas as pd

    f = p.data_dir / "ingest.json"
    if not f.is_file():
        return None
    s = json.loads(f.read_text())
    summary = pd.DataFrame(
        [
            {k: s[k] for k in ("clips", "ok", "reused", "skipped", "fallbacks")}
            | {k: s.get(k, 0) for k in ("unparseable", "duplicates", "other_classes", "lines")}
            | {"clips/s": round(s["clips_per_second"], 2)}
        ],
        index=["prepare-vggsound"],
    )
    skipped = pd.read_csv(p.data_dir / "skipped.csv") if (p.data_dir / "skipped.csv").is_file() else pd.DataFrame()
    if len(skipped):
        skipped["kind"] = skipped["reason"].astype(str).map(_kind)
        if "line" in skipped:
            skipped["stem"] = skipped["stem"].fillna("line " + skipped["line"].astype(str))
        skipped = skipped.groupby("kind").agg(
            clips=("stem", "size"), example=("stem", "first"), reason=("reason", "first")
        )
    return summary, skipped

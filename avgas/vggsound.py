"""VGGSound ingestion: from `vggsound.csv` and the downloaded videos to the project's data layout.

For every csv row of a class the combinations need, the clip's video is found (the public mirror's
`<ytid>_<start_seconds:06d>.mp4`, or Sound2Scene's `<ytid>_<start_ms>_<end_ms>.mp4`), its audio is
decoded by ffmpeg to 16 kHz mono wav, and one frame is written as jpg: the best frame of
Sound2Scene's `top1_boxes_top10_moments.json` (frame numbers at 10 fps; `frame_index_base` says
whether they count from 0 or 1), or the middle frame when the clip has no entry (counted as a
fallback). Work is spread over a process pool and is resumable: a clip whose wav and jpg exist is
not redone. Corrupt, truncated, silent, too-short or missing clips and unreadable frames are
skipped with a reason in `skipped.csv`; the others go on.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avgas import world
from avgas.data import DataError
from avgas.params import Params

SR = 16000
FPS = 10                       # the frame numbers of top1_boxes_top10_moments.json count at 10 fps
VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".avi")
SILENCE_RMS = 1e-4             # a clip quieter than this (full scale = 1) has no usable sound


@dataclass
class Ingested:
    clips: int            # rows of the needed classes in the csv
    ok: int               # clips in the layout (this call or before)
    reused: int           # of which already done before this call
    skipped: int
    fallbacks: int        # frames taken from the middle because the json had no entry
    seconds: float
    skip_list: Path
    reasons: dict

    @property
    def clips_per_second(self) -> float:
        done = self.ok - self.reused + self.skipped
        return done / self.seconds if self.seconds > 0 else float("nan")


def find_video(video_dir: Path, ytid: str, start_seconds: int) -> Path | None:
    stems = (f"{ytid}_{int(start_seconds):06d}", world.stem_of(ytid, start_seconds), f"{ytid}_{int(start_seconds)}")
    for stem in stems:
        for suf in VIDEO_SUFFIXES:
            f = video_dir / f"{stem}{suf}"
            if f.is_file():
                return f
    return None


def _ffmpeg() -> str:
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise DataError("ffmpeg not found: it decodes the VGGSound videos (apt-get install ffmpeg, or "
                        "conda install ffmpeg; environment.yml has it)")
    return exe


def _run(cmd: list[str]) -> tuple[bool, str]:
    r = subprocess.run(cmd, capture_output=True, text=True)
    return r.returncode == 0, (r.stderr or "").strip().splitlines()[-1][:200] if r.stderr.strip() else ""


def _duration(video: Path) -> float | None:
    probe = shutil.which("ffprobe")
    if probe is None:
        return None
    r = subprocess.run([probe, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(video)],
                       capture_output=True, text=True)
    try:
        return float(r.stdout.strip())
    except ValueError:
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
        ok, err = _run([ffmpeg, "-nostdin", "-v", "error", "-y", "-i", str(video), "-t", str(job["clip_seconds"]),
                        "-vn", "-ac", "1", "-ar", str(SR), "-f", "wav", str(a)])
        if not ok or not a.is_file() or a.stat().st_size <= 44:
            out["reason"] = f"no decodable audio ({err or 'empty output'})"
            return out
        try:
            wave, sr = sf.read(a, dtype="float32")
        except Exception as e:  # noqa: BLE001 - any unreadable decode is a skip, not a crash
            out["reason"] = f"unreadable audio ({type(e).__name__})"
            return out
        seconds = len(wave) / SR
        if seconds < job["min_seconds"]:
            out["reason"] = f"too short ({seconds:.2f} s < {job['min_seconds']} s)"
            return out
        if float(np.sqrt(np.mean(np.square(wave)))) < SILENCE_RMS:
            out["reason"] = "silent audio"
            return out
        frames = job["frames"]
        if frames:
            t = max(0.0, (int(frames[0]) - job["frame_index_base"]) / FPS)
        else:
            out["fallback"] = True
            t = min(seconds, job["clip_seconds"]) / 2
        f = Path(tmp) / "f.jpg"
        # -ss before -i seeks by time, so videos under 10 fps give their nearest frame, not an error
        ok, err = _run([ffmpeg, "-nostdin", "-v", "error", "-y", "-ss", f"{t:.3f}", "-i", str(video),
                        "-frames:v", "1", "-q:v", "2", str(f)])
        if (not ok or not f.is_file()) and frames:  # a frame number past the end: take the middle
            out["fallback"] = True
            ok, err = _run([ffmpeg, "-nostdin", "-v", "error", "-y", "-ss", f"{seconds / 2:.3f}", "-i", str(video),
                            "-frames:v", "1", "-q:v", "2", str(f)])
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


def read_csv(path: Path) -> list[tuple[str, int, str, str]]:
    if not Path(path).is_file():
        raise DataError(f"{path}: VGGSound csv not found (params key 'vggsound_csv'; vggsound.csv from "
                        "the VGGSound page, www.robots.ox.ac.uk/~vgg/data/vggsound/)")
    rows = []
    with open(path, newline="") as f:
        for r in csv.reader(f):
            if len(r) == 4 and not r[0].startswith("#"):
                try:
                    rows.append((r[0], int(r[1]), r[2].strip(), r[3].strip()))
                except ValueError:
                    continue  # a header or a malformed row
    return rows


def prepare(p: Params, workers: int | None = None, progress: bool = True) -> Ingested:
    """Ingest the clips of the classes the params' combinations need into p.data_dir."""
    from tqdm.auto import tqdm
    ffmpeg = _ffmpeg()
    if not p.video_dir or not Path(p.video_dir).is_dir():
        raise DataError(f"video folder {p.video_dir!r} not found (params key 'video_dir': the folder of "
                        "VGGSound's <ytid>_<start:06d>.mp4 files)")
    video_dir = Path(p.video_dir)
    wanted = set(world.classes(p))
    rows = [r for r in read_csv(Path(p.vggsound_csv)) if r[2] in wanted]
    frames = {}
    if p.frames_json:
        if not Path(p.frames_json).is_file():
            raise DataError(f"{p.frames_json}: frame json not found (params key 'frames_json'; Sound2Scene's "
                            "top1_boxes_top10_moments.json; null = middle frames)")
        frames = json.loads(Path(p.frames_json).read_text())
    root = p.data_dir
    jobs, skipped, results, reused = [], [], [], 0
    for ytid, start, label, split in rows:
        stem = world.stem_of(ytid, start)
        wav, jpg = root / "audios" / f"{stem}.wav", root / "images" / f"{stem}.jpg"
        if wav.is_file() and jpg.is_file():
            reused += 1
            results.append({"stem": stem, "ok": True, "fallback": False, "row": (ytid, start, label, split)})
            continue
        video = find_video(video_dir, ytid, start)
        if video is None:
            skipped.append((stem, ytid, start, label, "missing video (no file matching either naming)"))
            continue
        key = next((k for k in (stem, f"{ytid}_{start:06d}", ytid) if k in frames), None)
        jobs.append({"ffmpeg": ffmpeg, "video": str(video), "wav": str(wav), "jpg": str(jpg), "stem": stem,
                     "frames": frames.get(key) if key else None, "frame_index_base": p.frame_index_base,
                     "clip_seconds": 10.0, "min_seconds": p.min_clip_seconds, "row": (ytid, start, label, split)})
    t0 = time.perf_counter()
    workers = workers or p.ingest_workers or max(1, (os.cpu_count() or 2))
    if jobs:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(ingest_clip, {k: v for k, v in j.items() if k != "row"}): j for j in jobs}
            for fut in tqdm(as_completed(futures), total=len(futures), desc="VGGSound clips", disable=not progress):
                j = futures[fut]
                try:
                    r = fut.result()
                except Exception as e:  # noqa: BLE001 - a crashed worker skips its clip, the rest go on
                    r = {"stem": j["stem"], "ok": False, "reason": f"worker error ({type(e).__name__}: {e})"[:200],
                         "fallback": False}
                r["row"] = j["row"]
                if r["ok"]:
                    results.append(r)
                else:
                    ytid, start, label, _ = j["row"]
                    skipped.append((j["stem"], ytid, start, label, r["reason"]))
    seconds = time.perf_counter() - t0
    root.mkdir(parents=True, exist_ok=True)
    skip_list = root / "skipped.csv"
    with open(skip_list, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["stem", "ytid", "start_seconds", "label", "reason"])
        w.writerows(sorted(skipped))
    ok_rows = sorted(r["row"] for r in results)
    with open(p.metadata_path, "w", newline="") as f:
        csv.writer(f).writerows(ok_rows)
    reasons: dict = {}
    for *_, reason in skipped:
        kind = reason.split(" (")[0]
        reasons[kind] = reasons.get(kind, 0) + 1
    counts: dict = {}
    for _, _, label, split in ok_rows:
        counts.setdefault(label, {"train": 0, "test": 0})
        counts[label][split if split in ("train", "test") else "train"] += 1
    short = {c: counts.get(c, {"train": 0, "test": 0}) for c in sorted(wanted)
             if min(counts.get(c, {"train": 0, "test": 0}).values()) < 2}
    summary = Ingested(len(rows), len(results), reused, len(skipped), sum(r.get("fallback", False) for r in results),
                       seconds, skip_list, reasons)
    (root / "ingest.json").write_text(json.dumps({**{k: v for k, v in summary.__dict__.items() if k != "skip_list"},
                                                  "clips_per_second": summary.clips_per_second}, indent=1))
    if short:  # everything ingested is kept; the run cannot use these classes yet
        raise DataError("too few usable clips (at least 2 in train and 2 in test needed) for: "
                        + "; ".join(f"{c}: train {n['train']}, test {n['test']}" for c, n in short.items())
                        + f". Ingested clips are kept; reasons of the skipped ones are in {skip_list}")
    return summary


def report(p: Params):
    """What the last ingestion into p.data_dir did (for notebook 01): a one-row summary and the
    skip-list's reasons with an example clip each; None when nothing was ingested there."""
    import pandas as pd
    f = p.data_dir / "ingest.json"
    if not f.is_file():
        return None
    s = json.loads(f.read_text())
    summary = pd.DataFrame([{k: s[k] for k in ("clips", "ok", "reused", "skipped", "fallbacks")}
                            | {"clips/s": round(s["clips_per_second"], 2)}], index=["prepare-vggsound"])
    skipped = pd.read_csv(p.data_dir / "skipped.csv") if (p.data_dir / "skipped.csv").is_file() else pd.DataFrame()
    if len(skipped):
        skipped["kind"] = skipped["reason"].str.split(" \\(").str[0]
        skipped = skipped.groupby("kind").agg(clips=("stem", "size"), example=("stem", "first"),
                                              reason=("reason", "first"))
    return summary, skipped

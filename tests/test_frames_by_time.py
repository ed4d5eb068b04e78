"""Frames by time: the frame json's 10 fps numbers are times, and the frame on screen at that time
is taken whatever the video's rate (issue 25). Tiny mp4s whose every frame has its own grey level."""

import math
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from avgas import vggsound

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg missing: make setup installs it")
SECONDS = 2.0
STEP = 4  # grey level of frame k: STEP * k (x264 keeps a flat grey within +-2)


def _numbered(folder, fps: int):
    """A SECONDS-long mp4 at `fps` whose frame k is a flat grey of level STEP * k."""
    n = int(SECONDS * fps)
    src = folder / f"src{fps}"
    src.mkdir()
    for k in range(n):
        Image.new("L", (32, 32), STEP * k).save(src / f"{k:04d}.png")
    out = folder / f"v{fps}.mp4"
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-framerate", str(fps), "-i", str(src / "%04d.png")]
    cmd += ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-r", str(fps), str(out)]
    subprocess.run(cmd, check=True)
    shutil.rmtree(src)
    return out


def _frame_level(video, number, tmp_path) -> int:
    out = tmp_path / "f.jpg"
    ok, err = vggsound._run(vggsound._frame_command(shutil.which("ffmpeg"), video, number, out))
    assert ok, err
    return int(round(np.asarray(Image.open(out).convert("L"), dtype=float).mean() / STEP))


@pytest.mark.parametrize("fps", [4, 8, 10, 30])
def test_the_frame_at_the_jsons_time_is_taken_at_any_frame_rate(tmp_path, fps):
    video = _numbered(tmp_path, fps)
    times = vggsound.frame_times(video)
    assert len(times) == int(SECONDS * fps) and times[0] == 0.0
    for index in (0, 1, 3, 7, 12, 19):  # 10 fps numbers: 0.0 .. 1.9 s
        t = vggsound.frame_time(index)
        want = math.floor(t * fps + 1e-6)  # the frame on screen at t
        number = vggsound.frame_at(times, t)
        assert number == want, (fps, index, number, want)
        assert _frame_level(video, number, tmp_path) == want, (fps, index)
    # counted from 1 (frame_index_base 1): number 1 is the first frame
    assert vggsound.frame_at(times, vggsound.frame_time(1, base=1)) == 0
    # past the last frame's end (2.0 s and later): no frame; the caller takes the middle, counted
    for index in (20, 25, 999):
        assert vggsound.frame_at(times, vggsound.frame_time(index)) is None, (fps, index)
    assert vggsound.frame_at(times, -0.1) is None


def test_an_index_past_the_end_falls_back_to_the_middle_frame_and_is_counted(tmp_path):
    video = _numbered(tmp_path, 4)
    job = {
        "ffmpeg": shutil.which("ffmpeg"),
        "ffprobe": shutil.which("ffprobe"),
        "wav": str(tmp_path / "a" / "x.wav"),
        "jpg": str(tmp_path / "i" / "x.jpg"),
        "stem": "x",
        "frame_index_base": 0,
        "clip_seconds": 10.0,
        "min_seconds": 0.5,
    }
    # the video has no audio: build one with a sound so the clip ingests
    import soundfile as sf

    sf.write(tmp_path / "a.wav", 0.3 * np.random.default_rng(0).normal(size=int(16000 * SECONDS)), 16000)
    full = tmp_path / "full.mp4"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(video), "-i", str(tmp_path / "a.wav")]
        + ["-c:v", "copy", "-c:a", "aac", "-shortest", str(full)],
        check=True,
    )
    for frames, fallback, level in (([5], False, 2), ([25], True, 4), (None, True, 4)):
        out = vggsound.ingest_clip({**job, "video": str(full), "frames": frames})
        assert out["ok"] and out["fallback"] is fallback, (frames, out)
        got = int(round(np.asarray(Image.open(job["jpg"]).convert("L"), dtype=float).mean() / STEP))
        assert got == level, (frames, got)  # 0.5 s at 4 fps: frame 2; the middle (1 s): frame 4

"""VGGSound ingestion on tiny real mp4 clips that the test makes with ffmpeg, broken ones included."""
import csv
import json
import shutil

import fakes
import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from avgas import data, params, vggsound
from avgas.data import DataError

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg missing: make setup installs it")
COMBOS = {"hail": ["dog barking"]}


def _clip(folder, name, seconds=2.0, fps=10, silent=False, audio=True, colour=(200, 40, 40)):
    """A real mp4: a coloured picture and a tone (or silence), at the given frame rate."""
    t = np.arange(int(16000 * seconds)) / 16000
    wave = np.zeros_like(t) if silent else 0.3 * np.sin(2 * np.pi * 440 * t)
    return fakes.mp4(folder, name, Image.new("RGB", (64, 48), colour), wave if audio else None, seconds, fps)


@pytest.fixture(scope="module")
def vgg(tmp_path_factory):
    root = tmp_path_factory.mktemp("vgg")
    videos = root / "videos"
    videos.mkdir()
    rows, frames = [], {}
    good = []
    for i, (label, split) in enumerate([("dog barking", "train")] * 3 + [("dog barking", "test")] * 2
                                       + [("hail", "train")] * 3 + [("hail", "test")] * 2):
        ytid, start = f"good{i:02d}", 10 * i
        # both namings of the mirror and of Sound2Scene; one video under 10 fps
        name = f"{ytid}_{start:06d}" if i % 2 == 0 else f"{ytid}_{start * 1000}_{start * 1000 + 10000}"
        _clip(videos, name, fps=4 if i == 3 else 10)
        rows.append((ytid, start, label, split))
        good.append(f"{ytid}_{start * 1000}_{start * 1000 + 10000}")
        if i % 3 != 2:  # some clips have a frame entry, the others fall back to the middle frame
            frames[good[-1]] = [12, 3, 5]
    frames[good[0]] = [999, 1]  # past the end of a 2 s clip: the middle frame instead, counted
    broken = {"silent00": "silent audio", "short00": "too short", "noaudio00": "no decodable audio",
              "corrupt00": "no decodable audio", "trunc00": "no decodable audio", "missing00": "missing video"}
    _clip(videos, "silent00_000000", silent=True)
    _clip(videos, "short00_000000", seconds=0.4)
    _clip(videos, "noaudio00_000000", audio=False)
    (videos / "corrupt00_000000.mp4").write_bytes(np.random.default_rng(0).bytes(5000))
    full = _clip(videos, "trunc_src")
    (videos / "trunc00_000000.mp4").write_bytes(full.read_bytes()[:600])
    full.unlink()
    for ytid in broken:
        rows.append((ytid, 0, "hail", "train"))
    rows.append(("other00", 0, "playing bagpipes", "train"))  # a class no combination needs
    with open(root / "vggsound.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    (root / "top1_boxes_top10_moments.json").write_text(json.dumps(frames))
    p = params.load("params/vggsound.yaml", {
        "combinations": COMBOS, "vggsound_csv": str(root / "vggsound.csv"), "video_dir": str(videos),
        "frames_json": str(root / "top1_boxes_top10_moments.json"), "data_root": str(root / "data"),
        "metadata_csv": str(root / "data" / "metadata.csv"), "min_clip_seconds": 1.0,
        "train_tuples": 2, "val_tuples": 2, "test_tuples": 2})
    return p, good, broken


def test_good_clips_ingest_and_broken_ones_are_skipped_with_reasons(vgg):
    p, good, broken = vgg
    r = vggsound.prepare(p, workers=2, progress=False)
    assert (r.clips, r.ok, r.skipped) == (len(good) + len(broken), len(good), len(broken))
    for stem in good:
        wave, sr = sf.read(p.data_dir / "audios" / f"{stem}.wav")
        assert sr == 16000 and wave.ndim == 1 and 1.5 < len(wave) / sr <= 2.1
        assert Image.open(p.data_dir / "images" / f"{stem}.jpg").size == (64, 48)
    with open(r.skip_list) as f:
        reasons = {row["ytid"]: row["reason"] for row in csv.DictReader(f)}
    assert set(reasons) == set(broken)
    for ytid, why in broken.items():
        assert reasons[ytid].startswith(why), (ytid, reasons[ytid])
    assert r.fallbacks == sum(1 for i in range(len(good)) if i % 3 == 2) + 1
    assert r.clips_per_second > 0
    cat = data.catalogue(p)  # the layout serves the run
    assert len(cat) == len(good) and not cat.attrs["skipped"]


def test_a_second_call_redoes_nothing(vgg):
    p, good, _ = vgg
    vggsound.prepare(p, workers=1, progress=False)
    r = vggsound.prepare(p, workers=1, progress=False)
    assert r.reused == len(good) and r.ok == len(good)


def test_a_class_left_without_clips_is_named(vgg, tmp_path):
    p, _, _ = vgg
    p2 = p.replace(combinations={"hail": ["dog barking", "sheep bleating"]}, data_root=str(tmp_path / "d"),
                   metadata_csv=str(tmp_path / "d" / "metadata.csv"))
    with pytest.raises(DataError, match=r"sheep bleating: train 0, test 0"):
        vggsound.prepare(p2, workers=1, progress=False)
    assert (tmp_path / "d" / "metadata.csv").is_file()  # what was ingested is kept


def test_missing_inputs_are_named_with_their_keys(vgg, tmp_path):
    p, _, _ = vgg
    with pytest.raises(DataError, match="'video_dir'"):
        vggsound.prepare(p.replace(video_dir=str(tmp_path / "none")), progress=False)
    with pytest.raises(DataError, match="'vggsound_csv'"):
        vggsound.prepare(p.replace(vggsound_csv=str(tmp_path / "none.csv")), progress=False)

"""`python -m avgas check` on the real run's ingestion inputs (issue 10, item 11): VGGSound's csv,
the video folder and the frame json, each ok / missing / wrong, read (not only looked for)."""

import json

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from avgas import check, params

COMBOS = {"hail": ["dog barking"]}


def _params(tmp_path, **inputs):
    return params.load(
        "params/vggsound.yaml",
        {
            "combinations": COMBOS,
            "data_root": str(tmp_path / "d"),
            "metadata_csv": str(tmp_path / "d" / "metadata.csv"),
            "train_tuples": 2,
            "val_tuples": 2,
            "test_tuples": 2,
            "device": "cpu",
            "vggsound_csv": None,
            "video_dir": None,
            "frames_json": None,
            **inputs,
        },
    )


def _rows(p):
    """The ingestion rows of `check`: params key -> (status, detail); 'apart' for the overlap row."""
    out = {"apart": None}
    for item, row in check.check(p).iterrows():
        if item.endswith("(prepare-vggsound)") and row["params key"] in ("vggsound_csv", "video_dir", "frames_json"):
            out[row["params key"]] = (row["status"], row["detail"])
        elif item.startswith("ingestion inputs apart"):
            out["apart"] = (row["status"], row["detail"])
    return out


@pytest.fixture
def inputs(tmp_path):
    src = tmp_path / "src"
    (src / "video").mkdir(parents=True)
    lines = []
    for i in range(8):
        label, split = ("hail" if i % 2 else "dog barking"), ("train" if i < 4 else "test")
        lines.append(f"clip{i:02d},{10 * i},{label},{split}")
        if i != 7:  # one clip without its video
            (src / "video" / f"clip{i:02d}_{10 * i:06d}.mp4").write_bytes(b"")
    lines += ['x01,0,"engine accelerating, revving, vroom",train', 'x02,"0,hail,train', "x03,zero,hail,test"]
    (src / "vggsound.csv").write_text("\n".join(lines) + "\n")
    (src / "frames.json").write_text(json.dumps({"clip00_0_10000": [3, 1]}))
    return {
        "vggsound_csv": str(src / "vggsound.csv"),
        "video_dir": str(src / "video"),
        "frames_json": str(src / "frames.json"),
    }


def test_unset_inputs_are_missing_with_their_key_and_where_to_get_them(tmp_path):
    r = _rows(_params(tmp_path))
    assert r["vggsound_csv"][0] == "missing" and "'vggsound_csv' is not set" in r["vggsound_csv"][1]
    assert "robots.ox.ac.uk" in r["vggsound_csv"][1]
    assert r["video_dir"][0] == "missing" and "'video_dir' is not set" in r["video_dir"][1]
    assert r["frames_json"] == ("ok", "middle frames (frames_json: null)")
    assert r["apart"] is None


def test_given_inputs_are_read_and_counted(tmp_path, inputs):
    r = _rows(_params(tmp_path, **inputs))
    status, detail = r["vggsound_csv"]
    assert status == "ok", detail
    assert "11 lines: 9 rows, 8 of the 2 needed classes, 0 duplicates, 2 unparseable (first: line 10" in detail
    assert r["video_dir"] == ("ok", "7 video files; 7 of the csv's 8 clips of the needed classes")
    assert r["frames_json"] == ("ok", "frame numbers for 1 clips")


def test_wrong_inputs_are_named(tmp_path, inputs):
    src = tmp_path / "src"
    (src / "latin1.csv").write_bytes("caf\xe9,0,hail,train\n".encode("latin-1"))
    (src / "few.csv").write_text("clip00,0,dog barking,train\n")
    (src / "list.json").write_text("[1, 2]")
    (src / "bad.json").write_text("{")
    (src / "empty").mkdir()
    cases = [
        ("vggsound_csv", src / "latin1.csv", "not UTF-8 text (line 1"),
        ("vggsound_csv", src / "few.csv", "too few rows (2 train and 2 test needed) for hail: train 0, test 0"),
        ("video_dir", src / "vggsound.csv", "not a folder"),
        ("video_dir", src / "empty", "no video files"),
        ("frames_json", src / "list.json", "a JSON list, expected an object"),
        ("frames_json", src / "bad.json", "not a readable JSON file"),
    ]
    for key, path, why in cases:
        status, detail = _rows(_params(tmp_path, **{**inputs, key: str(path)}))[key]
        assert status == "wrong" and why in detail, (key, path, detail)
    status, detail = _rows(_params(tmp_path, **{**inputs, "frames_json": str(src / "nowhere.json")}))["frames_json"]
    assert status == "missing" and "top1_boxes_top10_moments.json" in detail


def test_inputs_overlapping_the_outputs_are_wrong(tmp_path, inputs):
    (tmp_path / "src" / "audios").mkdir()
    r = _rows(
        _params(
            tmp_path,
            **{
                **inputs,
                "data_root": str(tmp_path / "src"),
                "video_dir": str(tmp_path / "src" / "audios"),
                "metadata_csv": str(tmp_path / "src" / "metadata.csv"),
            },
        )
    )
    assert r["apart"][0] == "wrong" and "'video_dir'" in r["apart"][1] and "'data_root'" in r["apart"][1]


def test_once_the_data_is_prepared_the_ingestion_inputs_are_not_needed(tmp_path):
    d = tmp_path / "d"
    (d / "audios").mkdir(parents=True)
    (d / "images").mkdir()
    rows = []
    tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
    for label in ("hail", "dog barking"):
        for i, split in enumerate(["train"] * 3 + ["test"] * 2):
            ytid = f"{label.split()[0]}{i}"
            stem = f"{ytid}_0_10000"
            sf.write(d / "audios" / f"{stem}.wav", tone, 16000)
            Image.new("RGB", (8, 8)).save(d / "images" / f"{stem}.jpg")
            rows.append(f"{ytid},0,{label},{split}")
    (d / "metadata.csv").write_text("\n".join(rows) + "\n")
    p = _params(tmp_path, min_clip_seconds=0.5)
    t = check.check(p)
    assert t.loc["usable clips", "status"] == "ok", t.loc["usable clips", "detail"]
    r = _rows(p)
    assert r["vggsound_csv"][0] == "ok" and "needed only to prepare the data again" in r["vggsound_csv"][1]
    assert r["video_dir"][0] == "ok"


def test_check_reads_the_clips_and_names_the_ones_the_run_will_skip(small_params):
    """Issue 10, item 3: `check` reads the data (every header; the audio and image of a sample, or
    of every clip), by the run's own rule, instead of only looking for files."""
    from avgas import data, world

    world.generate(small_params, progress=False)
    cat = data.catalogue(small_params)
    p = small_params.replace(world="vggsound", data_root=str(small_params.data_dir))
    victim = cat[cat["split"] == "train"].iloc[0]
    x, sr = sf.read(victim["audio"], dtype="float32")
    x[5] = np.nan
    sf.write(victim["audio"], x, sr, subtype="FLOAT")
    (p.cache_dir / "clip_checks.json").unlink()

    def content(sample):
        row = check.check(p, sample=sample).loc["clip content"]
        return row["status"], row["detail"]

    status, detail = content(None)  # --all
    assert status == "ok" and f"1 will be skipped by the run, e.g. {victim['stem']}: non-finite audio" in detail
    status, detail = content(3)
    assert "audio and image of 3 clips (sample; --all reads every clip)" in detail
    assert not (p.cache_dir / "clip_checks.json").exists()  # check writes nothing


def test_check_finds_a_damaged_stand_in_of_the_run(small_params):
    """Issue 10, item 9: the run's own stand-in files are checked against their hashes."""
    from avgas import data, standins
    from tests.test_inputs_untouched import TINY

    p = small_params.replace(**TINY)
    data.prepare(p, progress=False)
    standins.ensure(p, progress=False)
    assert check.check(p).loc["stand-ins of this run", "status"] == "ok"
    f = p.checkpoint_dir / "swav.pth.tar"
    f.write_bytes(f.read_bytes()[:100])
    row = check.check(p).loc["stand-ins of this run"]
    assert (
        row["status"] == "wrong" and "swav.pth.tar is damaged" in row["detail"] and "trains them again" in row["detail"]
    )

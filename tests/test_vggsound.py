"""VGGSound ingestion on tiny real mp4 clips that the test makes with ffmpeg, broken ones included."""

import csv
import json
import os
import shutil
import signal
from pathlib import Path

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
    """A real mp4: a coloured picture and a sound of its own (or silence), at the given frame rate.
    Each name gets its own sound (a tone and noise that change every 0.1 s), so that no two clips
    are duplicates of each other (duplicates.py)."""
    wave = fakes.sound(name, seconds)
    return fakes.mp4(
        folder, name, Image.new("RGB", (64, 48), colour), 0 * wave if silent else wave if audio else None, seconds, fps
    )


@pytest.fixture(scope="module")
def vgg(tmp_path_factory):
    root = tmp_path_factory.mktemp("vgg")
    videos = root / "videos"
    videos.mkdir()
    rows, frames = [], {}
    good = []
    for i, (label, split) in enumerate(
        [("dog barking", "train")] * 3
        + [("dog barking", "test")] * 2
        + [("hail", "train")] * 3
        + [("hail", "test")] * 2
    ):
        ytid, start = f"good{i:02d}", 10 * i
        # both namings of the mirror and of Sound2Scene; one video under 10 fps
        name = f"{ytid}_{start:06d}" if i % 2 == 0 else f"{ytid}_{start * 1000}_{start * 1000 + 10000}"
        _clip(videos, name, fps=4 if i == 3 else 10)
        rows.append((ytid, start, label, split))
        good.append(f"{ytid}_{start * 1000}_{start * 1000 + 10000}")
        if i % 3 != 2:  # some clips have a frame entry, the others fall back to the middle frame
            frames[good[-1]] = [12, 3, 5]
    frames[good[0]] = [999, 1]  # past the end of a 2 s clip: the middle frame instead, counted
    broken = {
        "silent00": "silent audio",
        "short00": "too short",
        "noaudio00": "no decodable audio",
        "corrupt00": "no decodable audio",
        "trunc00": "no decodable audio",
        "missing00": "missing video",
    }
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
    p = params.load(
        "params/vggsound.yaml",
        {
            "combinations": COMBOS,
            "vggsound_csv": str(root / "vggsound.csv"),
            "video_dir": str(videos),
            "frames_json": str(root / "top1_boxes_top10_moments.json"),
            "data_root": str(root / "data"),
            "metadata_csv": str(root / "data" / "metadata.csv"),
            "run_root": str(root / "runs"),  # the catalogue's checks cache: never the checkout's runs/
            "min_clip_seconds": 1.0,
            "train_tuples": 2,
            "val_tuples": 2,
            "test_tuples": 2,
        },
    )
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
    p2 = p.replace(
        combinations={"hail": ["dog barking", "sheep bleating"]},
        data_root=str(tmp_path / "d"),
        metadata_csv=str(tmp_path / "d" / "metadata.csv"),
    )
    with pytest.raises(DataError, match=r"sheep bleating: train 0, test 0"):
        vggsound.prepare(p2, workers=1, progress=False)
    assert (tmp_path / "d" / "metadata.csv").is_file()  # what was ingested is kept


def test_missing_inputs_are_named_with_their_keys(vgg, tmp_path):
    p, _, _ = vgg
    with pytest.raises(DataError, match="'video_dir'"):
        vggsound.prepare(p.replace(video_dir=str(tmp_path / "none")), progress=False)
    with pytest.raises(DataError, match="'vggsound_csv'"):
        vggsound.prepare(p.replace(vggsound_csv=str(tmp_path / "none.csv")), progress=False)


# ------------------------------------------------------------------ issue 10: every csv line counted


def _good_rows(p):
    return [r for r in vggsound.read_csv(p.vggsound_csv) if r[0].startswith("good")]


def _line(row):
    return ",".join(map(str, row))


def test_every_csv_line_is_scanned_into_exactly_one_kind(tmp_path):
    lines = [
        "ytid,start_seconds,label,split",  # 1 header
        "# a comment",  # 2
        "",  # 3 blank
        'aaa,10,"engine accelerating, revving, vroom",train',  # 4 a quoted label with commas
        "bbb,ten,hail,train",  # 5 non-numeric start
        'ccc,"20,hail,train',  # 6 a stray quote ...
        "ddd,30,hail,train",  # 7 ... damages only its own line
        "ddd,30,hail,train",  # 8 duplicate of 7
        "eee,40,hail,train,extra",  # 9 five fields
        "fff,50,hail,val",  # 10 not train/test
        "ggg,60.0,hail,test",
    ]  # 11 a whole number written as float
    f = tmp_path / "v.csv"
    f.write_text("\r\n".join(lines) + "\n")
    s = vggsound.scan_csv(f)
    assert s.lines == 11 and s.accounted() == 11
    assert (s.header, s.comments, s.blank) == (1, 1, 1)
    assert [r.tuple for r in s.rows] == [
        ("aaa", 10, "engine accelerating, revving, vroom", "train"),
        ("ddd", 30, "hail", "train"),
        ("ggg", 60, "hail", "test"),
    ]
    assert s.duplicates == {8: 7}
    assert [n for n, _, _ in s.unparseable] == [5, 6, 9, 10]


def test_bad_duplicate_and_conflicting_rows_are_each_accounted_for(vgg, tmp_path):
    p, good, _ = vgg
    rows = _good_rows(p)
    lines = ["ytid,start_seconds,label,split", "# hand-edited", ""]
    lines += [_line(r) for r in rows[:3]]
    lines += [
        "bad00,ten,hail,train",  # non-numeric start
        'bad01,"0,hail,train',
    ]  # a stray quote: only this line is lost
    lines += [_line(r) for r in rows[3:]]  # every row after it is still ingested
    lines += [
        _line(rows[0]),  # a duplicate: ingested once, counted
        'other01,0,"engine accelerating, revving, vroom",train',  # another class (quoted commas)
        "twice00,0,hail,train",
        "twice00,0,dog barking,test",  # one clip, two needed labels
        "twice01,0,hail,test",
        "twice01,0,playing bagpipes,test",
    ]  # one clip, a needed and another label
    f = tmp_path / "messy.csv"
    f.write_text("\n".join(lines) + "\n")
    q = p.replace(vggsound_csv=str(f), data_root=str(tmp_path / "d"), metadata_csv=str(tmp_path / "d" / "m.csv"))
    r = vggsound.prepare(q, workers=2, progress=False)
    assert r.ok == len(good) and r.duplicates == 1 and r.unparseable == 2 and r.conflicts == 3
    assert (r.header, r.comments, r.blank) == (1, 1, 1)
    assert r.other_classes == 2  # the quoted label and 'playing bagpipes'
    assert (
        r.lines
        == len(lines)
        == (r.clips + r.other_classes + r.duplicates + r.unparseable + r.header + r.blank + r.comments)
    )
    assert r.clips == r.ok + r.skipped - r.unparseable
    with open(r.skip_list) as fh:
        listed = {int(x["line"]): x["reason"] for x in csv.DictReader(fh)}
    assert listed[7].startswith("unparseable csv line 7: start_seconds 'ten'")
    assert listed[8].startswith("unparseable csv line 8: bad quoting")
    n = len(lines)
    assert all(listed[k].startswith("conflicting labels") for k in (n - 3, n - 2, n - 1)), listed
    assert r.reasons == {"unparseable csv line": 2, "conflicting labels": 3}
    assert len(q.metadata_path.read_text().splitlines()) == len(good)  # the duplicate is in once
    record = json.loads((q.data_dir / "ingest.json").read_text())
    assert record["duplicates"] == 1 and record["duplicate_lines"] == {str(len(lines) - 5): 4}
    assert "unparseable" in r.summary() and f"csv: {len(lines)} lines" in r.summary()
    summary, kinds = vggsound.report(q)
    assert summary.loc["prepare-vggsound", "unparseable"] == 2
    assert set(kinds.index) == {"unparseable csv line", "conflicting labels"}


def test_a_csv_that_is_not_utf8_is_one_line_naming_file_and_key(vgg, tmp_path):
    p, _, _ = vgg
    f = tmp_path / "latin1.csv"
    f.write_bytes("good00,0,hail,train\ncaf\xe9,0,hail,train\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1\.csv: not UTF-8 text \(line 2.*'vggsound_csv'") as e:
        vggsound.prepare(
            p.replace(vggsound_csv=str(f), data_root=str(tmp_path / "d"), metadata_csv=str(tmp_path / "d" / "m.csv")),
            progress=False,
        )
    assert "\n" not in str(e.value) and not (tmp_path / "d").exists()


def test_non_finite_audio_is_skipped_with_its_reason(vgg, tmp_path, monkeypatch):
    import soundfile

    p, _, _ = vgg
    real = soundfile.read

    def nan_read(*a, **k):
        wave, sr = real(*a, **k)
        wave[100] = np.nan
        return wave, sr

    monkeypatch.setattr(soundfile, "read", nan_read)
    video = vggsound.find_video(vggsound.paths.resolve(p.video_dir), "good00", 0)
    out = vggsound.ingest_clip(
        {
            "ffmpeg": shutil.which("ffmpeg"),
            "video": str(video),
            "stem": "x",
            "wav": str(tmp_path / "a" / "x.wav"),
            "jpg": str(tmp_path / "i" / "x.jpg"),
            "frames": None,
            "frame_index_base": 0,
            "clip_seconds": 10.0,
            "min_seconds": 1.0,
        }
    )
    assert not out["ok"] and out["reason"].startswith("non-finite audio"), out
    assert not (tmp_path / "a").exists()


# ------------------------------------------------------------- issue 10: inputs are never written


def _tree(folder):
    return {str(f): f.read_bytes() for f in sorted(folder.rglob("*")) if f.is_file()}


@pytest.mark.parametrize(
    "case",
    [
        "metadata=csv",
        "frames=metadata",
        "videos=audios",
        "videos=data_root",
        "csv=skipped",
        "frames=ingest",
        "csv-in-images",
    ],
)
def test_overlapping_inputs_and_outputs_are_refused_before_any_write(vgg, tmp_path, case):
    import dataclasses

    p, _, _ = vgg
    d = tmp_path / "d"
    user = tmp_path / "user"
    user.mkdir()
    csv_file, frames = user / "vggsound.csv", user / "frames.json"
    csv_file.write_bytes(Path(p.vggsound_csv).read_bytes())
    frames.write_text("{}")
    changes = {
        "vggsound_csv": str(csv_file),
        "frames_json": str(frames),
        "video_dir": p.video_dir,
        "data_root": str(d),
        "metadata_csv": str(d / "metadata.csv"),
    }
    if case == "metadata=csv":
        changes["metadata_csv"] = str(csv_file)
        keys = ("metadata_csv", "vggsound_csv")
    elif case == "frames=metadata":
        changes["metadata_csv"] = str(frames)
        keys = ("metadata_csv", "frames_json")
    elif case == "videos=audios":
        changes["data_root"], changes["metadata_csv"] = str(user), str(user / "metadata.csv")
        (user / "audios").mkdir()
        changes["video_dir"] = str(user / "audios")
        keys = ("data_root", "video_dir")
    elif case == "videos=data_root":
        changes["data_root"], changes["metadata_csv"] = p.video_dir, str(d / "metadata.csv")
        keys = ("data_root", "video_dir")
    elif case == "csv=skipped":
        changes["data_root"], changes["metadata_csv"] = str(user), str(user / "metadata.csv")
        csv_file.rename(user / "skipped.csv")
        changes["vggsound_csv"] = str(user / "skipped.csv")
        keys = ("data_root", "vggsound_csv")
    elif case == "frames=ingest":
        changes["data_root"], changes["metadata_csv"] = str(user), str(user / "metadata.csv")
        frames.rename(user / "ingest.json")
        changes["frames_json"] = str(user / "ingest.json")
        keys = ("data_root", "frames_json")
    else:
        (user / "images").mkdir()
        csv_file.rename(user / "images" / "vggsound.csv")
        changes["vggsound_csv"] = str(user / "images" / "vggsound.csv")
        changes["data_root"], changes["metadata_csv"] = str(user), str(user / "metadata.csv")
        keys = ("data_root", "vggsound_csv")
    q = dataclasses.replace(p, **changes)  # not p.replace: params refuse some of these already
    before, videos = _tree(user), _tree(vggsound.paths.resolve(p.video_dir))
    with pytest.raises(DataError, match=f"params key '{keys[0]}'.*params key '{keys[1]}'") as e:
        vggsound.prepare(q, workers=1, progress=False)
    assert "\n" not in str(e.value)
    assert _tree(user) == before and _tree(vggsound.paths.resolve(p.video_dir)) == videos
    assert not d.exists()


def _cli(capsys, *args):
    """python -m avgas ARGS, in this process: (exit code, stderr)."""
    from avgas import cli

    capsys.readouterr()
    code = cli.main(list(args))
    return code, capsys.readouterr().err


def test_the_users_csv_is_byte_identical_after_a_refused_and_a_normal_ingestion(vgg, tmp_path, capsys):
    p, good, _ = vgg
    user = tmp_path / "user"
    user.mkdir()
    mine = user / "vggsound.csv"
    mine.write_bytes(Path(p.vggsound_csv).read_bytes())
    original = mine.read_bytes()
    common = [
        "-p",
        "combinations={hail: [dog barking]}",
        "-p",
        f"video_dir={p.video_dir}",
        "-p",
        "frames_json=null",
        "-p",
        "min_clip_seconds=1.0",
        "-p",
        "train_tuples=2",
        "-p",
        "val_tuples=2",
        "-p",
        "test_tuples=2",
    ]
    # the output csv named as the user's csv: refused before any write (by params, exit 2, or by
    # prepare-vggsound's own check, exit 1), one line
    code, err = _cli(
        capsys,
        "prepare-vggsound",
        "params/vggsound.yaml",
        *common,
        "-p",
        f"vggsound_csv={mine}",
        "-p",
        f"data_root={user}",
        "-p",
        f"metadata_csv={mine}",
    )
    assert code in (1, 2) and len(err.strip().splitlines()) == 1, err
    assert "'vggsound_csv'" in err and "'metadata_csv'" in err
    # the user's csv where the skip-list goes: only prepare-vggsound's check sees it
    skipped = user / "skipped.csv"
    skipped.write_bytes(original)
    code, err = _cli(
        capsys,
        "prepare-vggsound",
        "params/vggsound.yaml",
        *common,
        "-p",
        f"vggsound_csv={skipped}",
        "-p",
        f"data_root={user}",
        "-p",
        f"metadata_csv={user / 'metadata.csv'}",
    )
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("avgas: prepare-vggsound would write") and "'vggsound_csv'" in err and "'data_root'" in err
    assert skipped.read_bytes() == original and mine.read_bytes() == original
    assert sorted(f.name for f in user.iterdir()) == ["skipped.csv", "vggsound.csv"]
    # a normal ingestion reads it and leaves it as it was
    q = p.replace(vggsound_csv=str(mine), data_root=str(tmp_path / "d"), metadata_csv=str(tmp_path / "d" / "m.csv"))
    assert vggsound.prepare(q, workers=2, progress=False).ok == len(good)
    assert mine.read_bytes() == original


def test_a_second_ingestion_into_the_same_folder_is_refused(vgg, tmp_path):
    p, _, _ = vgg
    q = p.replace(data_root=str(tmp_path / "d"), metadata_csv=str(tmp_path / "d" / "m.csv"))
    with (
        vggsound.paths.exclusive(q.data_dir, "prepare-vggsound"),
        pytest.raises(DataError, match="in use by another avgas process"),
    ):
        vggsound.prepare(q, workers=1, progress=False)
    assert not (q.data_dir / "audios").exists()


# ------------------------------------------------- issue 10: killing the ingestion kills its workers


def _stat(pid):
    """(state, ppid, name) of a process from /proc, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = text[text.index("(") + 1 : text.rindex(")")]
    state, ppid = text[text.rindex(")") + 2 :].split()[:2]
    return state, int(ppid), name


def _descendants(pid):
    table = {}
    for d in os.listdir("/proc"):
        if d.isdigit() and (s := _stat(int(d))) is not None:
            table[int(d)] = s
    found, todo = set(), [pid]
    while todo:
        parent = todo.pop()
        kids = [k for k, (_, ppid, _) in table.items() if ppid == parent and k not in found]
        found.update(kids)
        todo += kids
    return {k: table[k][2] for k in found}


def _alive(pid):
    s = _stat(pid)
    return s is not None and s[0] not in ("Z", "X")


@pytest.mark.slow  # 5-6 s each: a python -m avgas process started and killed
@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc (Linux)")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killing_the_ingestion_leaves_no_worker_or_ffmpeg_behind(tmp_path, sig):
    import subprocess
    import sys
    import time

    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "ffmpeg").write_text("#!/bin/sh\nexec sleep 120\n")  # a decode that takes its time
    (fake / "ffmpeg").chmod(0o755)
    videos = tmp_path / "videos"
    videos.mkdir()
    rows = []
    for i in range(6):
        (videos / f"slow{i:02d}_000000.mp4").write_bytes(b"")
        rows.append(f"slow{i:02d},0,{'hail' if i % 2 else 'dog barking'},{'train' if i < 4 else 'test'}")
    (tmp_path / "vggsound.csv").write_text("\n".join(rows) + "\n")
    cmd = [
        sys.executable,
        "-m",
        "avgas",
        "prepare-vggsound",
        "params/vggsound.yaml",
        "--workers",
        "2",
        "-p",
        "combinations={hail: [dog barking]}",
        "-p",
        f"video_dir={videos}",
        "-p",
        "frames_json=null",
        "-p",
        f"vggsound_csv={tmp_path / 'vggsound.csv'}",
        "-p",
        f"data_root={tmp_path / 'd'}",
        "-p",
        f"metadata_csv={tmp_path / 'd' / 'm.csv'}",
        "-p",
        "train_tuples=2",
        "-p",
        "val_tuples=2",
        "-p",
        "test_tuples=2",
    ]
    env = {**os.environ, "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}", "OMP_NUM_THREADS": "1"}
    err = tmp_path / "stderr.txt"
    with open(err, "w") as ferr:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=ferr, start_new_session=True)
    try:
        deadline = time.time() + 60
        while sum(name == "sleep" for name in _descendants(proc.pid).values()) < 2:  # both workers decoding
            assert proc.poll() is None, err.read_text()
            assert time.time() < deadline, _descendants(proc.pid)
            time.sleep(0.1)
        kids = _descendants(proc.pid)
        assert len(kids) >= 4, kids  # two workers, two "ffmpeg"
        os.kill(proc.pid, sig)
        proc.wait(timeout=30)
        deadline = time.time() + 3
        while any(_alive(k) for k in kids) and time.time() < deadline:
            time.sleep(0.05)
        assert not [(k, kids[k]) for k in kids if _alive(k)]
        if sig == signal.SIGTERM:  # stopped cleanly: one line, how to continue
            assert proc.returncode == 1, err.read_text()
            last = err.read_text().strip().splitlines()[-1]
            assert last.startswith("avgas: prepare-vggsound stopped by SIGTERM") and "again to continue" in last
            assert "Traceback" not in err.read_text()
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()

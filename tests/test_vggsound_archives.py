"""VGGSound from tar / tar.gz archives, streamed member by member (issue 25): the same result as the
unpacked clips, a bounded disk, a truncated archive skipped, a killed ingestion resumed archive by
archive. Tiny mp4s made here by ffmpeg."""

import csv
import hashlib
import logging
import shutil
import tarfile

import fakes
import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from avgas import check, params, vggsound
from avgas.data import DataError

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg missing: make setup installs it")
COMBOS = {"hail": ["dog barking"]}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """10 clips (and a corrupt one) as loose mp4s, and the same files packed into three archives."""
    root = tmp_path_factory.mktemp("arch")
    loose = root / "loose"
    loose.mkdir()
    rows, names = [], []
    for i, (label, split) in enumerate(
        [("dog barking", "train")] * 3
        + [("dog barking", "test")] * 2
        + [("hail", "train")] * 3
        + [("hail", "test")] * 2
    ):
        ytid, start = f"clip{i:02d}", 10 * i
        name = f"{ytid}_{start:06d}" if i % 2 == 0 else f"{ytid}_{start * 1000}_{start * 1000 + 10000}"
        colour = tuple(int(c) for c in np.random.default_rng(i).integers(0, 255, 3))
        fakes.mp4(loose, name, Image.new("RGB", (64, 48), colour), fakes.sound(name, 2.0), 2.0, 10)
        rows.append((ytid, start, label, split))
        names.append(f"{name}.mp4")
    (loose / "bad00_000000.mp4").write_bytes(np.random.default_rng(0).bytes(4000))
    rows.append(("bad00", 0, "hail", "train"))
    names.append("bad00_000000.mp4")
    rows.append(("gone00", 0, "hail", "train"))  # in no folder and no archive
    with open(root / "vggsound.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    packed = root / "packed"
    packed.mkdir()
    shards = {
        "a_shard.tar": (names[:4], "w"),
        "b_shard.tar.gz": (names[4:8], "w:gz"),
        "c_shard.tgz": (names[8:], "w:gz"),
    }
    for shard, (members, mode) in shards.items():
        with tarfile.open(packed / shard, mode) as tf:
            tf.add(root / "vggsound.csv", arcname="vggsound/vggsound.csv")  # not a video: passed over
            for n in members:
                tf.add(loose / n, arcname=f"vggsound/video/{n}")
    return root, loose, packed, shards


def _params(root, video_dir, data):
    return params.load(
        "params/vggsound.yaml",
        {
            "combinations": COMBOS,
            "vggsound_csv": str(root / "vggsound.csv"),
            "video_dir": str(video_dir),
            "frames_json": None,
            "data_root": str(data),
            "metadata_csv": str(data / "metadata.csv"),
            "min_clip_seconds": 1.0,
            "train_tuples": 2,
            "val_tuples": 2,
            "test_tuples": 2,
        },
    )


def _layout(p):
    """What an ingestion left: metadata, skip reasons by clip, audio samples and frame bytes."""
    with open(p.data_dir / "skipped.csv") as f:
        reasons = {r["stem"]: r["reason"].split(" (")[0] for r in csv.DictReader(f)}
    waves = {w.stem: sf.read(w)[0] for w in sorted((p.data_dir / "audios").glob("*.wav"))}
    jpgs = {j.stem: j.read_bytes() for j in sorted((p.data_dir / "images").glob("*.jpg"))}
    return p.metadata_path.read_text(), reasons, waves, jpgs


def _digest(folder):
    return {f.name: hashlib.sha1(f.read_bytes()).hexdigest() for f in sorted(folder.iterdir())}


def _same(a, b):
    assert a[0] == b[0] and a[1] == b[1]
    assert a[2].keys() == b[2].keys() and all(np.array_equal(a[2][k], b[2][k]) for k in a[2])
    assert a[3] == b[3]


@pytest.fixture(scope="module")
def unpacked(corpus, tmp_path_factory):
    root, loose, _, _ = corpus
    p = _params(root, loose, tmp_path_factory.mktemp("d_loose"))
    r = vggsound.prepare(p, workers=2, progress=False)
    assert r.ok == 10 and r.reasons == {"no decodable audio": 1, "missing video": 1}
    return _layout(p)


@pytest.mark.parametrize("workers", [1, 2])
def test_archives_ingest_as_the_unpacked_clips_do_with_bounded_disk(corpus, unpacked, tmp_path, workers):
    root, _, packed, _ = corpus
    before = _digest(packed)
    p = _params(root, packed, tmp_path / "d")
    r = vggsound.prepare(p, workers=workers, progress=False)
    _same(_layout(p), unpacked)
    assert (r.archives, r.archives_read, r.bad_archives) == (3, 3, {})
    # the bound: at most one unpacked member per worker on disk at once, deleted when done
    biggest = max(m.size for f in packed.iterdir() for m in tarfile.open(f) if m.isfile())
    assert 1 <= r.peak_staged_files <= workers and r.peak_staged_bytes <= workers * biggest
    assert not (p.data.staging).exists()
    assert _digest(packed) == before  # the archives are only read
    status, detail = check._video_row(p, prepared=True)[3:]
    assert status == "ok" and "3 archives" in detail and "3 read to their end" in detail, detail
    assert detail.endswith("11 of the csv's 12 clips of the needed classes")  # all but the one in no archive
    # a second call opens no archive: every archive was read to its end and its clips are done
    again = vggsound.prepare(p, workers=workers, progress=False)
    assert again.archives_read == 0 and again.reused == 10 and again.reasons == r.reasons


def test_a_folder_of_loose_clips_and_archives_together(corpus, unpacked, tmp_path):
    root, loose, packed, shards = corpus
    both = tmp_path / "both"
    both.mkdir()
    shutil.copy(packed / "a_shard.tar", both)
    for n in shards["b_shard.tar.gz"][0] + shards["c_shard.tgz"][0]:
        shutil.copy(loose / n, both)
    p = _params(root, both, tmp_path / "d")
    vggsound.prepare(p, workers=2, progress=False)
    _same(_layout(p), unpacked)


def test_a_truncated_archive_is_a_logged_skip(corpus, tmp_path, caplog):
    root, _, packed, _ = corpus
    cut = tmp_path / "cut"
    cut.mkdir()
    shutil.copy(packed / "a_shard.tar", cut)
    whole = (packed / "b_shard.tar.gz").read_bytes()
    (cut / "b_shard.tar.gz").write_bytes(whole[: len(whole) * 2 // 3])  # a download cut short
    shutil.copy(packed / "c_shard.tgz", cut)
    p = _params(root, cut, tmp_path / "d")
    with caplog.at_level(logging.WARNING, logger="avgas"), pytest.raises(DataError, match="too few usable clips"):
        vggsound.prepare(p, workers=2, progress=False)  # its clips are missing: too few of 'hail' in train
    record = __import__("json").loads((p.data_dir / "ingest.json").read_text())
    assert (
        list(record["bad_archives"]) == ["b_shard.tar.gz"]
        and "unreadable after" in record["bad_archives"]["b_shard.tar.gz"]
    )
    assert any("b_shard.tar.gz" in m for m in caplog.messages)
    with open(p.data_dir / "skipped.csv") as f:
        missing = [r for r in csv.DictReader(f) if r["reason"].startswith("missing video")]
    assert any("unreadable archive(s): b_shard.tar.gz" in r["reason"] for r in missing)
    # every clip is accounted for: ingested (the readable part too) or skipped with its reason
    assert record["clips"] == record["ok"] + record["skipped"] - record["unparseable"] == 12
    assert record["ok"] >= 8  # a_shard and c_shard whole, and what b_shard had before the cut
    assert not (p.data.staging).exists()


def test_a_killed_ingestion_resumes_without_redoing_finished_archives(corpus, unpacked, tmp_path, monkeypatch):
    root, _, packed, _ = corpus
    p = _params(root, packed, tmp_path / "d")
    real_copy = vggsound._copy_member
    calls = {"n": 0}

    def killed_in_the_second_archive(src, dest):
        calls["n"] += 1
        if calls["n"] == 6:  # a_shard has 4 needed members: this is b_shard's second
            raise KeyboardInterrupt
        return real_copy(src, dest)

    monkeypatch.setattr(vggsound, "_copy_member", killed_in_the_second_archive)
    with pytest.raises(DataError, match="stopped by Ctrl-C.*run the same command again"):
        vggsound.prepare(p, workers=1, progress=False)
    monkeypatch.setattr(vggsound, "_copy_member", real_copy)
    opened = []
    real_members = vggsound._members

    def spy(archive):
        opened.append(archive.name)
        return real_members(archive)

    monkeypatch.setattr(vggsound, "_members", spy)
    r = vggsound.prepare(p, workers=2, progress=False)
    assert opened == ["b_shard.tar.gz", "c_shard.tgz"]  # a_shard was finished: not read again
    assert r.reused >= 4
    _same(_layout(p), unpacked)


@pytest.mark.slow  # ~20 s: a python -m avgas process killed with SIGKILL in its second archive
def _until_let_go(folder, seconds=30):
    """SIGKILL reaches the killed command's forked workers a moment after the command itself is
    reaped, and they hold the folder's lock until then (as a user restarting at once would be told):
    wait for the lock to be free, as a user would."""
    import fcntl
    import time

    from avgas.custody import LOCK

    deadline = time.time() + seconds
    with open(folder / LOCK) as f:
        while True:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                assert time.time() < deadline, "the killed ingestion's processes still hold its folder"
                time.sleep(0.1)
            else:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)
                return


def test_an_ingestion_killed_with_sigkill_resumes_after_its_finished_archives(corpus, unpacked, tmp_path, monkeypatch):
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    root, _, packed, shards = corpus
    fake = tmp_path / "bin"
    fake.mkdir()
    stuck = shards["b_shard.tar.gz"][0][1].removesuffix(".mp4")  # b_shard's second clip decodes forever
    (fake / "ffmpeg").write_text(
        f'#!/bin/sh\ncase "$*" in *{stuck}*) exec sleep 120;; esac\nexec /usr/bin/ffmpeg "$@"\n'
    )
    (fake / "ffmpeg").chmod(0o755)
    p = _params(root, packed, tmp_path / "d")
    cmd = [sys.executable, "-m", "avgas", "prepare-vggsound", "params/vggsound.yaml", "--workers", "1"]
    for k in ("vggsound_csv", "video_dir", "data_root", "metadata_csv"):
        cmd += ["-p", f"{k}={getattr(p, k)}"]
    cmd += ["-p", "combinations={hail: [dog barking]}", "-p", "frames_json=null", "-p", "min_clip_seconds=1.0"]
    cmd += ["-p", "train_tuples=2", "-p", "val_tuples=2", "-p", "test_tuples=2"]
    env = {**os.environ, "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    state = p.data_dir / "archives.json"
    try:
        deadline = time.time() + 120
        while not (state.is_file() and json.loads(state.read_text()).get("a_shard.tar", {}).get("complete")):
            assert proc.poll() is None, proc.stderr.read()
            assert time.time() < deadline
            time.sleep(0.2)
        time.sleep(2)  # into b_shard, stuck on its second clip
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    _until_let_go(p.data_dir)
    assert not json.loads(state.read_text()).get("b_shard.tar.gz", {}).get("complete")
    opened = []
    real_members = vggsound._members

    def spy(archive):
        opened.append(archive.name)
        return real_members(archive)

    monkeypatch.setattr(vggsound, "_members", spy)
    r = vggsound.prepare(p, workers=2, progress=False)
    assert opened == ["b_shard.tar.gz", "c_shard.tgz"] and r.reused >= 4
    assert not (p.data.staging).exists()
    _same(_layout(p), unpacked)

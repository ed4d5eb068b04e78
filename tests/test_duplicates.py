"""No clip in two splits (issue 25): the same video under other ids is found by its sound and its
frame, kept once, and the splits are made over duplicate groups. Tiny mp4s made here by ffmpeg."""

import csv
import json
import shutil

import fakes
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from avgas import check, data, duplicates, params, vggsound, world

COMBOS = {"hail": ["dog barking"]}
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg missing: make setup installs it")


def _picture(i):
    rng = np.random.default_rng(100 + i)  # a frame with structure (a flat one is never matched)
    return Image.fromarray(np.kron(rng.integers(0, 255, (6, 8, 3)), np.ones((8, 8, 1))).astype(np.uint8))


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """12 distinct clips and 3 renamed copies of three of them (other ids, other splits)."""
    root = tmp_path_factory.mktemp("dups")
    videos = root / "videos"
    videos.mkdir()
    rows = []
    for i, (label, split) in enumerate(
        [("dog barking", "train")] * 4
        + [("dog barking", "test")] * 2
        + [("hail", "train")] * 4
        + [("hail", "test")] * 2
    ):
        name = f"orig{i:02d}_000000"
        fakes.mp4(videos, name, _picture(i), fakes.sound(name, 2.0), 2.0, 10)
        rows.append((f"orig{i:02d}", 0, label, split))
    copies = [(0, "test"), (4, "train"), (7, "test")]  # a train clip again in test, a test clip in train, ...
    for k, (i, split) in enumerate(copies):
        shutil.copy(videos / f"orig{i:02d}_000000.mp4", videos / f"copy{k:02d}_000030.mp4")
        rows.append((f"copy{k:02d}", 30, rows[i][2], split))
    with open(root / "vggsound.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    p = params.load(
        "params/vggsound.yaml",
        {
            "combinations": COMBOS,
            "vggsound_csv": str(root / "vggsound.csv"),
            "video_dir": str(videos),
            "frames_json": None,
            "data_root": str(root / "data"),
            "metadata_csv": str(root / "data" / "metadata.csv"),
            "min_clip_seconds": 1.0,
            "train_tuples": 2,
            "val_tuples": 2,
            "test_tuples": 2,
            "run_root": str(root / "runs"),
        },
    )
    return p, copies


@needs_ffmpeg
def test_renamed_copies_are_found_kept_once_and_listed(seeded):
    p, copies = seeded
    r = vggsound.prepare(p, workers=2, progress=False)
    assert (r.duplicate_groups, r.duplicate_clips) == (3, 3)
    assert r.ok == 12 and r.reasons == {"duplicate clip": 3}
    record = json.loads((p.data_dir / "ingest.json").read_text())
    groups = {g["kept"]: g for g in record["duplicate_groups"]}
    for k, (i, _) in enumerate(copies):  # the first in the csv's order is kept
        g = groups[world.stem_of(f"orig{i:02d}", 0)]
        assert g["dropped"] == [world.stem_of(f"copy{k:02d}", 30)] and "audio" in g["by"]
    kept = {row.split(",")[0] for row in p.metadata_path.read_text().splitlines()}
    assert kept == {f"orig{i:02d}" for i in range(12)}
    with open(r.skip_list) as f:
        listed = [row for row in csv.DictReader(f) if row["reason"].startswith("duplicate clip")]
    assert sorted(row["ytid"] for row in listed) == ["copy00", "copy01", "copy02"]
    assert r.clips == r.ok + r.skipped - r.unparseable  # every row accounted for
    status, detail = check.duplicates_row(p)[3:]
    assert status == "ok" and detail.startswith("3 groups") and "3 clips left out" in detail
    # no group spans two splits in the run's catalogue
    cat = data.catalogue(p, screen=False)
    split = dict(zip(cat["stem"], cat["split"]))
    for g in record["duplicate_groups"]:
        assert len({split[s] for s in [g["kept"], *g["dropped"]] if s in split}) == 1


def test_splits_are_made_over_duplicate_groups():
    """With every member of a group in the metadata (a hand-made csv), the group goes to one split:
    test if any of it is test, and train or val as a whole otherwise."""
    p = params.load("params/quick.yaml", {"val_fraction": 0.3})
    stems = [f"c{i:02d}" for i in range(40)]
    meta = pd.DataFrame(
        {
            "stem": stems,
            "label": ["a"] * 20 + ["b"] * 20,
            "split": ["train"] * 16 + ["test"] * 4 + ["train"] * 16 + ["test"] * 4,
        }
    )
    group_of = {}
    for members in (["c00", "c01", "c02"], ["c03", "c17"], ["c20", "c21", "c22", "c23"], ["c05", "c25"]):
        group_of.update({s: members[0] for s in members})  # one group across train and test, one over two classes
    split = data.split_over_groups(meta, p, group_of)
    assert set(split) == {"train", "val", "test"}
    by_group = {}
    for s, sp in zip(stems, split):
        by_group.setdefault(group_of.get(s, s), set()).add(sp)
    assert all(len(v) == 1 for v in by_group.values()), by_group
    assert split[3] == split[17] == "test"
    # without groups: the per-clip split of before (no clip moves)
    plain = data.split_over_groups(meta, p, {})
    before = meta["split"].copy()
    for label, group in meta[meta["split"] == "train"].groupby("label"):
        val = data._split_val(list(group["stem"]), p.val_fraction, p.seed)
        before[group.index[group["stem"].isin(val)]] = "val"
    assert list(plain) == list(before)


def test_the_synthetic_world_has_no_duplicates(tmp_path):
    p = params.load(
        "params/quick.yaml",
        {
            "data_root": str(tmp_path / "data"),
            "metadata_csv": str(tmp_path / "data" / "metadata.csv"),
            "run_root": str(tmp_path / "runs"),  # the world store beside it: never the checkout's runs/
            "clips_per_class": 12,
        },
    )
    world.generate(p, progress=False)
    cat = data.catalogue(p, screen=False)
    groups = duplicates.of_folder(p.data_dir, list(cat["stem"]), dict(zip(cat["stem"], cat["image"])))
    assert groups.groups == []
    status, detail = check.duplicates_row(p)[3:]
    assert status == "ok" and detail.startswith(f"none among the {len(cat)} clips")


def test_fingerprints_match_the_same_sound_and_not_another():
    wave = fakes.sound("x", 5.0)
    a = duplicates.audio_bits(wave, 16000)
    again = duplicates.audio_bits(0.5 * wave + np.random.default_rng(1).normal(0, 1e-3, len(wave)), 16000)
    other = duplicates.audio_bits(fakes.sound("y", 5.0), 16000)
    assert bin(a ^ again).count("1") <= duplicates.AUDIO_MAX_BITS < bin(a ^ other).count("1")
    same = duplicates.Fingerprint(a, 1)
    assert (
        len(
            duplicates.find(
                ["p", "q", "r"], [same, duplicates.Fingerprint(again, 2), duplicates.Fingerprint(other, 1)]
            ).groups
        )
        == 1
    )
    # the same frame under a clearly different sound is not the same clip
    assert duplicates.find(["p", "r"], [same, duplicates.Fingerprint(other, 1)]).groups == []

import numpy as np
import pytest

from avgas import data, world


@pytest.fixture
def catalogue(small_params):
    world.generate(small_params, progress=False)
    return data.catalogue(small_params)


def test_splits_are_disjoint_by_clip(catalogue):
    assert catalogue["stem"].is_unique
    assert set(catalogue["split"]) == {"train", "val", "test"}
    counts = catalogue.groupby(["label", "split"]).size().unstack()
    assert (counts["val"] >= 1).all() and (counts["test"] >= 1).all()


def test_tuples_stay_inside_their_split(small_params, catalogue):
    t = data.make_tuples(catalogue, small_params)
    split_of = dict(zip(catalogue["stem"], catalogue["split"]))
    label_of = dict(zip(catalogue["stem"], catalogue["label"]))
    drawn_from = t["split"].replace("unseen", "test")  # unseen pairings: test clips only (issue 13)
    assert (t["fg_stem"].map(split_of) == drawn_from).all()
    assert (t["bg_stem"].map(split_of) == drawn_from).all()
    assert (t["fg_stem"].map(label_of) == t["fg_label"]).all()
    assert (t["bg_stem"].map(label_of) == t["bg_label"]).all()
    per_split = t.groupby("split").size()
    unseen = len(small_params.unseen()) * (6 // 3)  # test_tuples // combinations per unseen pairing
    assert per_split.to_dict() == {"train": 12, "val": 3, "test": 6, "unseen": unseen} and unseen > 0
    # each split's clips are used by that split alone
    for a in data.SPLITS:
        for b in data.SPLITS:
            if a < b:
                clips = lambda s: set(t.loc[t.split == s, "fg_stem"]) | set(t.loc[t.split == s, "bg_stem"])  # noqa: E731
                assert not clips(a) & clips(b)
    assert t["tuple_id"].is_unique


def test_mixing_by_addition_with_relative_level():
    fg, bg = np.full(4, 0.1), np.full(4, 0.2)
    assert np.allclose(data.mix(fg, bg), 0.3)
    assert np.allclose(data.mix(np.full(4, 0.01), bg, 20.0), 0.3)  # +20 dB = x10
    assert np.allclose(data.mix(fg, bg, -20.0), 0.21)
    # a mix that leaves [-1, 1] is scaled down as a whole, not clipped: the samples inside the range
    # keep their ratio to the peak (clipping would leave 0.9 and 0.2 as they are)
    loud = data.mix(np.array([0.9, 0.45, -0.9, 0.1]), np.array([0.9, 0.45, -0.9, 0.1]))
    assert np.allclose(loud, [1.0, 0.5, -1.0, 0.2 / 1.8])


def test_missing_files_are_skipped_with_a_reason(small_params, catalogue):
    victim = catalogue[catalogue.split == "train"].iloc[0]
    (small_params.data_dir / "images" / f"{victim.stem}.png").unlink()
    cat = data.catalogue(small_params)
    assert victim.stem not in set(cat["stem"])
    assert (victim.stem, "no image file") in cat.attrs["skipped"]


def test_class_without_test_clips_is_named(small_params, catalogue):
    for stem in catalogue.loc[(catalogue.label == "dog barking") & (catalogue.split == "test"), "stem"]:
        (small_params.data_dir / "audios" / f"{stem}.wav").unlink()
    with pytest.raises(data.DataError, match="dog barking"):
        data.catalogue(small_params)


def test_mix_spectrograms_are_cached(small_params, catalogue):
    t = data.make_tuples(catalogue, small_params)
    val = t[t.split == "val"]
    s = data.mix_spectrograms(small_params, catalogue, val, "val", progress=False)
    assert s.shape == (3, 257, 48)  # (8000 - 512) // 159 + 1 frames
    assert (small_params.cache_dir / "spec_mix_val.pt").is_file()
    assert data.mix_spectrograms(small_params, catalogue, val, "val", progress=False).equal(s)


def test_a_cache_made_by_other_code_is_made_again(small_params, catalogue, monkeypatch):
    """The run's caches carry the stamp of the code that makes them (avgas.codestamp): after a pull
    that changes the spectrogram code, a rerun notebook must not read the old tensors."""
    from avgas import codestamp

    t = data.make_tuples(catalogue, small_params)
    val = t[t.split == "val"]
    data.mix_spectrograms(small_params, catalogue, val, "val", progress=False)
    reads, load = [], data.load_waves
    monkeypatch.setattr(data, "load_waves", lambda *a, **k: reads.append(1) or load(*a, **k))
    data.mix_spectrograms(small_params, catalogue, val, "val", progress=False)
    assert not reads  # the same code: read back
    monkeypatch.setattr(codestamp, "stamp", lambda sources, root=None: "other code")
    data.mix_spectrograms(small_params, catalogue, val, "val", progress=False)
    assert reads  # made again

"""Issue 10, items 3-5: bad clips, bad csv rows and bad images are skipped with their reason or
stop with the file named -- never trained on, never dropped without a word."""

import numpy as np
import pytest
import soundfile as sf

from avgas import data, spectrogram, world


@pytest.fixture
def world_dir(small_params):
    world.generate(small_params, progress=False)
    cat = data.catalogue(small_params)
    # one train clip of four different classes, each to be spoiled in its own way
    victims = cat[cat["split"] == "train"].groupby("label").head(1).head(5)
    return small_params, cat, list(victims.itertuples())


def test_nan_tiny_silent_and_truncated_wavs_are_skipped_with_their_reason(world_dir):
    p, cat, (nan, tiny, silent, cut, ok) = world_dir
    x, sr = sf.read(nan.audio, dtype="float32")
    x[100:110] = np.nan
    sf.write(nan.audio, x, sr, subtype="FLOAT")
    sf.write(tiny.audio, np.full(100, 0.1, "float32"), sr)
    sf.write(silent.audio, np.zeros(len(x), "float32"), sr)
    raw = open(cut.audio, "rb").read()
    open(cut.audio, "wb").write(raw[:60])  # the header promises samples the file no longer has
    after = data.catalogue(p)
    reasons = dict(after.attrs["skipped"])
    assert reasons[nan.stem].startswith("non-finite audio")
    assert reasons[tiny.stem].startswith("too short")
    assert reasons[silent.stem].startswith("silent audio")
    assert cut.stem in reasons
    assert ok.stem not in reasons and len(after) == len(cat) - 4
    # loading a bad clip directly stops with the file named (no NaN spectrogram is ever made)
    with pytest.raises(spectrogram.AudioError, match=nan.stem + r".*non-finite"):
        spectrogram.load_wave(nan.audio, p.clip_seconds)


def test_an_unreadable_image_is_skipped_and_named(world_dir):
    p, cat, (broken, notimage, *_) = world_dir
    raw = open(broken.image, "rb").read()
    open(broken.image, "wb").write(raw[: len(raw) // 3])  # truncated
    open(notimage.image, "w").write("not an image")
    reasons = dict(data.catalogue(p).attrs["skipped"])
    assert reasons[broken.stem].startswith("unreadable image")
    assert reasons[notimage.stem].startswith("unreadable image")
    with pytest.raises(data.DataError, match=notimage.stem):
        data.load_image(notimage.image)


def test_every_metadata_row_is_kept_or_reported_with_its_line(world_dir):
    p, cat, _ = world_dir
    lines = p.metadata_path.read_text().splitlines()
    bad = list(lines)
    bad.insert(3, 'abc,"notanumber,dog barking,train')  # stray quote: only this line is lost
    bad.insert(5, "xyz,twelve,dog barking,train")  # non-numeric start
    bad.insert(7, lines[0])  # a duplicate row
    bad.insert(9, "only,three,fields")
    p.metadata_path.write_text("\n".join(bad) + "\n")
    meta = data.read_metadata(p.metadata_path)
    problems = meta.attrs["problems"]
    assert len(meta) == len(lines) and len(problems) == 4
    assert len(meta) + len(problems) == len(bad)
    where = {w: why for w, why in problems}
    assert "unparseable csv line 4" in where["metadata.csv:4"]
    assert "line 6" in where["metadata.csv:6"] and "twelve" in where["metadata.csv:6"]
    assert where["metadata.csv:8"].startswith("duplicate of line 1")
    assert "3 fields" in where["metadata.csv:10"]
    after = data.catalogue(p)
    assert len(after) == len(cat)  # nothing after the stray quote was lost; the duplicate counted once
    assert {w for w, _ in after.attrs["skipped"]} >= set(where)


def test_a_non_utf8_csv_is_one_named_error(world_dir):
    p, *_ = world_dir
    p.metadata_path.write_bytes(p.metadata_path.read_bytes() + "caf\xe9,1,dog,train\n".encode("latin-1"))
    with pytest.raises(data.DataError, match="metadata.csv: not UTF-8.*metadata_csv"):
        data.catalogue(p)

import csv
import hashlib

import numpy as np
import soundfile as sf
from PIL import Image

from avgas import paper, pictures, sounds, world


def digest(folder):
    h = hashlib.sha256()
    for f in sorted(folder.rglob("*")):
        if f.is_file() and f.name not in ("world.json", "artifacts.json", ".avgas.lock"):  # bookkeeping, not the world
            h.update(f.relative_to(folder).as_posix().encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def test_every_paper_class_has_a_sound_and_a_picture():
    names = paper.background_classes() + paper.foreground_classes()
    assert len(paper.background_classes()) == 6 and len(paper.foreground_classes()) == 20
    for name in names:
        assert name in sounds.DESIGNS
        assert name in pictures.SCENES or name in pictures.SHAPES


def test_sounds_vary_per_clip_and_stay_in_range():
    for name in sounds.DESIGNS:
        a = sounds.render(name, np.random.default_rng(1), 1.0)
        b = sounds.render(name, np.random.default_rng(2), 1.0)
        assert a.shape == (16000,) and a.dtype == np.float32
        assert np.abs(a).max() < 1 and np.sqrt(np.mean(a**2)) > 0.01
        assert not np.allclose(a, b)


def test_layout_matches_real_data(small_params):
    info = world.generate(small_params, progress=False)
    d = info.data_dir
    rows = list(csv.reader(open(d / "metadata.csv")))
    assert len(rows) == info.n_clips == 6 * len(world.classes(small_params))
    for ytid, start, label, split in rows:
        assert len(ytid) == 11 and split in ("train", "test")
        stem = world.stem_of(ytid, int(start))
        x, sr = sf.read(d / "audios" / f"{stem}.wav")
        assert sr == 16000 and x.ndim == 1 and len(x) == 8000
        assert Image.open(d / "images" / f"{stem}.png").size == (32, 32)
    assert {r[2] for r in rows} == set(world.classes(small_params))
    assert len({r[0] for r in rows}) == len(rows)  # no two clips share a stem


def test_deterministic_by_seed_and_reused(small_params):
    a = world.generate(small_params, progress=False)
    b = world.generate(small_params.replace(name="u"), progress=False)
    c = world.generate(small_params.replace(name="v", seed=1), progress=False)
    assert digest(a.data_dir) == digest(b.data_dir)
    assert digest(a.data_dir) != digest(c.data_dir)
    again = world.generate(small_params, progress=False)
    assert again.reused and digest(again.data_dir) == digest(a.data_dir)

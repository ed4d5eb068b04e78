"""The instrument store (avgas.instrument): a part is reused exactly when what makes it is the same.

Two ways: every params key is changed once and the store keys are compared (an instrument setting
must change some key, any other setting none), and the stand-ins are built for one run and
fetched by a second run that differs in a separator setting only, rebuilt where an instrument
setting differs, and rebuilt when the stored bytes are damaged."""

from __future__ import annotations

import dataclasses
import json
import typing

import pytest

from avgas import instrument, params, selection, standins

# Params keys that the synthetic world's instrument (stand-ins and judges) is a function of.
# A new key must be added here or to NOT_INSTRUMENT: the test below refuses an unclassified key.
INSTRUMENT = {
    "seed",  # the instrument draw when instrument_seed is null, and the unseen pairings
    "instrument_seed",
    "clips_per_class",
    "test_fraction",
    "clip_seconds",
    "image_size",
    "combinations",
    "sources",
    "stand_in_sources",
    "unseen_pairs",
    "scenes_per_combination",
    "fv_image_size",
    "stand_in_batch",
    "fv_width_per_group",
    "fv_steps",
    "g_resolution",
    "g_channels",
    "g_dim_z",
    "g_feature_proj",
    "g_steps",
    "g_lr",
    "g_anchor_weight",
    "g_diversity_weight",
    "g_blend_share",
    "fa_width",
    "fa_epochs",
    "detector_epochs",
    "detector_imgsz",
    "detector_conf",
    "clip_steps",
    "classifier_steps",
    "sound2scene_checkpoint",  # a part given as a file replaces its stand-in (and keys what learned from it)
    "swav_checkpoint",
    "icgan_folder",
}
NOT_INSTRUMENT = {
    # where and how a run proceeds
    "name",
    "run_root",
    "device",
    "amp",
    "threads",
    "progress_seconds",
    "resume",
    "retrain_stand_ins",
    "train_processes",
    "train_jobs",
    "spectrogram_batch",
    # the run's own data and tuples (the instrument has pools of its own)
    "data_root",
    "metadata_csv",
    "val_fraction",
    "relative_level_db",
    "train_tuples",
    "val_tuples",
    "test_tuples",
    # the method: separators, their training, generation
    "alignments",
    "separator_width",
    "epochs",
    "batch_size",
    "lr",
    "weight_decay",
    "separator_seeds",
    "control",
    "mix_lambda",
    # the real run only (VGGSound and released weights: nothing is built)
    "world",
    "vggsound_csv",
    "video_dir",
    "frames_json",
    "frame_index_base",
    "min_clip_seconds",
    "ingest_workers",
    "inception_weights",
    "detector_weights",
    "clip_checkpoint",
    "clip_model",
}


def _weights(name: str, tmp_path) -> str:
    """A weight file or folder for a weight key, made in tmp_path."""
    if name == "icgan_folder":
        (tmp_path / "icgan").mkdir(exist_ok=True)
        (tmp_path / "icgan" / "G_ema_best0.pth").write_bytes(b"weights")
        return str(tmp_path / "icgan")
    f = tmp_path / name
    f.write_bytes(b"weights")
    return str(f)


# keys whose other value is not derived from the value itself
FIXED_OTHER = {
    "combinations": {"hail": ["dog barking", "train horning"], "sea waves": ["playing harp", "people cheering"]},
    "alignments": ["A2A"],
    "instrument_seed": 7,
    "detector_conf": 0.3,
}


def _other(name: str, value, meta: dict, tmp_path):
    """Another valid value for a params key."""
    if name in ("sound2scene_checkpoint", "swav_checkpoint", "icgan_folder"):
        return _weights(name, tmp_path)
    if name in FIXED_OTHER:
        return FIXED_OTHER[name]
    if name == "stand_in_sources":  # one set for both sizes, or each size its own
        return None if value else [2, 3]
    choices = meta.get("choices") or typing.get_args(params.HINTS[name])
    if typing.get_origin(params.HINTS[name]) is typing.Literal or "choices" in meta:
        return next(c for c in choices if c != value)
    if isinstance(value, bool):
        return not value
    if value is None:
        return "elsewhere"
    return _nudged(value, meta)


def _nudged(value, meta: dict):
    """A number moved a little within its bounds; a string with a letter added."""
    if isinstance(value, int):
        return value + 1 if meta.get("max") is None or value + 1 <= meta["max"] else value - 1
    if isinstance(value, float):
        new = value * 1.5 if value else 0.1
        return new if meta.get("max") is None or new <= meta["max"] else value / 2
    return value + "x"


def test_every_setting_changes_the_keys_it_should(tmp_path):
    base = params.load("params/quick.yaml").replace(unseen_pairs=2, run_root=str(tmp_path / "runs"))
    before = selection.instrument_keys(base)
    unclassified = set(params.FIELDS) - INSTRUMENT - NOT_INSTRUMENT
    assert not unclassified, f"classify these params keys for the instrument store: {sorted(unclassified)}"
    for name, f in params.FIELDS.items():
        if name == "world":  # the real run has no instrument to build
            continue
        changes = {name: _other(name, getattr(base, name), dict(f.metadata), tmp_path)}
        if name == "sources":
            changes["unseen_pairs"] = 0  # pairings kept apart are a two-source design
        after = selection.instrument_keys(base.replace(**changes))
        if name in INSTRUMENT:
            assert after != before, f"{name} changes the instrument but no store key"
        else:
            assert after == before, f"{name} is no instrument setting, yet it changed {after.keys() - before.items()}"


def test_keys_of_the_ablation_share_all_but_g():
    from avgas.params import design

    p = params.load("params/default.yaml")
    other = design.ablation_blend_share(p.g_blend_share)
    main, ablation = selection.instrument_keys(p), selection.instrument_keys(p.replace(g_blend_share=other))
    assert {k for k in main if main[k] != ablation[k]} == {"G"}


@pytest.fixture
def tiny(tmp_path):
    """A synthetic run small enough to train its stand-ins in seconds."""
    return params.load("params/quick.yaml").replace(
        run_root=str(tmp_path / "runs"),
        clips_per_class=8,
        scenes_per_combination=2,
        fv_steps=2,
        g_steps=2,
        fa_epochs=1,
        threads=1,
    )


def _trainings(monkeypatch) -> list[str]:
    """Record which stand-ins are trained (the real training runs)."""
    seen: list[str] = []
    for fn in ("train_image_encoder", "train_generator", "train_audio_encoder"):
        real = getattr(standins, fn)

        def spy(*a, _real=real, _fn=fn, **kw):
            seen.append(_fn)
            return _real(*a, **kw)

        monkeypatch.setattr(standins, fn, spy)
    return seen


def test_store_reuses_across_runs_and_rebuilds_what_changed(tiny, monkeypatch):
    seen = _trainings(monkeypatch)
    first = standins.ensure(tiny.replace(name="first"), progress=False)
    assert sorted(seen) == ["train_audio_encoder", "train_generator", "train_image_encoder"]
    store = instrument.root(tiny)
    assert sorted(e["part"] for e in instrument.entries(store)) == ["G", "f_A", "f_V"]

    seen.clear()  # a separator setting differs: every stand-in comes from the store, byte for byte
    other = tiny.replace(name="second", epochs=5, separator_width=0.5)
    second = standins.ensure(other, progress=False)
    assert seen == []
    assert second["store"] == first["store"]
    for key in standins.PARTS:
        for a, b in zip(standins._saved_files(tiny.replace(name="first"), key), standins._saved_files(other, key)):
            assert a.read_bytes() == b.read_bytes()
    assert standins.damaged(other, second) == []

    seen.clear()  # G's own setting differs: only G is trained again
    standins.ensure(tiny.replace(name="third", g_steps=3), progress=False)
    assert seen == ["train_generator"]

    seen.clear()  # an instrument draw differs: everything is trained again
    standins.ensure(tiny.replace(name="fourth", instrument_seed=5), progress=False)
    assert sorted(seen) == ["train_audio_encoder", "train_generator", "train_image_encoder"]


def test_damaged_store_entry_is_rebuilt_not_used(tiny, monkeypatch):
    seen = _trainings(monkeypatch)
    first = standins.ensure(tiny.replace(name="first"), progress=False)
    entry = instrument.root(tiny) / first["store"]["f_A"]
    stored = entry / "sound2scene.pth"
    # the run's file is a hard link of the stored one: damage a copy so the run keeps its own bytes
    data = stored.read_bytes()
    stored.unlink()
    stored.write_bytes(data[: len(data) // 2])
    seen.clear()
    second = standins.ensure(tiny.replace(name="second"), progress=False)
    assert seen == ["train_audio_encoder"]
    assert standins.damaged(tiny.replace(name="second"), second) == []
    rec = json.loads((entry / instrument.ENTRY).read_text())
    assert rec["hashes"]["sound2scene.pth"] == instrument.paths.file_hash(stored)


def test_every_params_key_is_a_field():
    # the classification above names real keys only (a renamed key must be renamed here too)
    names = {f.name for f in dataclasses.fields(params.Params)}
    assert INSTRUMENT <= names and NOT_INSTRUMENT <= names


def _separator_data(n: int, seed: int):
    import pandas as pd
    import torch

    from avgas import train

    g = torch.Generator().manual_seed(seed)
    tuples = pd.DataFrame({"tuple_id": range(n), "stem_fg": [f"f{i}" for i in range(n)], "stem_bg": ["b"] * n})
    feats = {k: tuple(torch.randn(n, 8, generator=g) for _ in range(2)) for k in ("A", "V")}
    return train.SeparatorData(tuples, torch.randn(n, 257, 20, generator=g), feats)


def test_separator_trained_once_for_runs_that_differ_downstream(tmp_path):
    from avgas import train

    base = params.load("params/quick.yaml").replace(
        run_root=str(tmp_path / "runs"), epochs=1, separator_width=0.0625, batch_size=8, threads=1
    )
    for key in ("sound2scene_checkpoint", "swav_checkpoint"):  # the frozen parts' bytes key the training
        for name in ("a", "b", "c", "d"):
            f = base.replace(name=name).weight_path(key)
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_bytes(b"the same frozen part")
    tr, va = _separator_data(16, 0), _separator_data(8, 1)
    first = train.train_separator(base.replace(name="a"), "A2A", tr, va, progress=False)
    assert not first.reused and len(first.history["val_loss"]) == 1
    # G's setting differs: the same training, taken from the store
    second = train.train_separator(base.replace(name="b", g_steps=7), "A2A", tr, va, progress=False)
    assert second.reused and second.best_val == first.best_val
    # a separator setting differs: trained anew
    third = train.train_separator(base.replace(name="c", lr=0.01), "A2A", tr, va, progress=False)
    assert not third.reused
    # other training tuples: trained anew
    other = _separator_data(16, 2)
    other.tuples["stem_fg"] = [f"g{i}" for i in range(16)]
    fourth = train.train_separator(base.replace(name="d"), "A2A", other, va, progress=False)
    assert not fourth.reused


def test_a_world_is_generated_once_for_runs_that_share_it(tmp_path):
    from conftest import SMALL

    from avgas import world

    base = params.load("params/quick.yaml", {**SMALL, "run_root": str(tmp_path)})
    first = world.generate(base.replace(name="a"), progress=False)
    assert not first.reused
    second = world.generate(base.replace(name="b", g_steps=3, epochs=1), progress=False)  # shares the world
    assert second.reused and second.seconds == 0.0
    a, b = base.replace(name="a").data_dir, base.replace(name="b").data_dir
    files = sorted(f.relative_to(a) for f in a.rglob("*") if f.is_file() and f.name != "artifacts.json")
    assert files == sorted(f.relative_to(b) for f in b.rglob("*") if f.is_file() and f.name != "artifacts.json")
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    other = world.generate(base.replace(name="c", clips_per_class=7), progress=False)  # another world
    assert not other.reused


def test_g_and_f_a_are_taken_only_beside_the_f_v_they_learned_from(tiny, monkeypatch):
    import shutil

    seen = _trainings(monkeypatch)
    first = standins.ensure(tiny.replace(name="first"), progress=False)
    shutil.rmtree(instrument.root(tiny) / first["store"]["f_V"])  # f_V deleted from the store only
    seen.clear()
    standins.ensure(tiny.replace(name="second"), progress=False)
    assert sorted(seen) == ["train_audio_encoder", "train_generator", "train_image_encoder"]


def test_a_runs_own_part_of_the_same_settings_is_kept_when_the_store_lacks_it(tmp_path):
    p = params.load("params/quick.yaml", {"run_root": str(tmp_path / "runs")})
    own = p.checkpoint_dir / "judges" / "judge.pt"
    own.parent.mkdir(parents=True)
    own.write_bytes(b"a judge trained before the store existed")
    e = instrument.entry(p, "judge", {"steps": 3}, {"judge.pt": own})
    assert instrument.fetch_or_adopt(e, lambda: None) is None  # saved with other settings: built again
    assert instrument.fetch_or_adopt(e, lambda: {"recall": 1.0}) == {"recall": 1.0}  # kept, and stored
    own.unlink()
    assert instrument.fetch(e) == {"recall": 1.0} and own.read_bytes().startswith(b"a judge")


def _build_slowly(store: str, started, seconds: float) -> None:
    """A run that finds a part missing, builds it (slowly) and publishes it."""
    import time

    e = _dummy_entry(store, "built")
    assert instrument.fetch(e) is None  # missing: this process now holds the build claim
    started.set()
    time.sleep(seconds)
    e.files[0][1].parent.mkdir(parents=True, exist_ok=True)
    e.files[0][1].write_bytes(b"the part")
    instrument.publish(e, {"built by": "the first run"})


def _dummy_entry(store: str, run: str):
    from pathlib import Path

    return instrument.Entry(
        "part", {"a": 1}, Path(store) / ".instrument", (("part.bin", Path(store) / run / "part.bin"),)
    )


def test_a_part_being_built_beside_is_waited_for_not_built_twice(tmp_path, monkeypatch):
    import multiprocessing as mp

    from avgas import progress

    (tmp_path / "run").mkdir()
    monkeypatch.setenv(progress.ENV_LOG, str(tmp_path / "run" / "log.txt"))  # a batch run: steps are recorded
    ctx = mp.get_context("spawn")
    started = ctx.Event()
    builder = ctx.Process(target=_build_slowly, args=(str(tmp_path), started, 3.0))
    builder.start()
    assert started.wait(60)
    e = _dummy_entry(str(tmp_path), "waiting")
    report = instrument.fetch(e)  # waits for the builder's claim, then takes the part from the store
    builder.join(60)
    assert builder.exitcode == 0
    assert report == {"built by": "the first run"}
    assert (tmp_path / "waiting" / "part.bin").read_bytes() == b"the part"
    assert instrument.fetch(_dummy_entry(str(tmp_path), "third")) is not None  # no claim left behind
    # the wait is a step of its own in the stage table: idle time, not the part's build
    (row,) = [json.loads(line) for line in (tmp_path / "run" / "stages.jsonl").read_text().splitlines()]
    assert row["step"].startswith(instrument.WAITING + " part") and row["seconds"] > 1.0


def test_stand_ins_of_both_sizes_are_one_set_for_the_two_source_run_and_its_three_source_sibling(tmp_path):
    """stand_in_sources [2, 3]: the default run and its --sweep sources=3 sibling key the same
    f_V, G and f_A (built once); their pool holds scenes of two and three classes of generator
    groups only, no evaluated group of either run inside one, in the same budget of scenes; the
    judges stay each run's own. Without it, each size has stand-ins of its own."""
    from avgas import protocol

    base = params.load("params/quick.yaml").replace(
        unseen_pairs=2, run_root=str(tmp_path / "runs"), stand_in_sources=None
    )
    own = [selection.instrument_keys(base.replace(sources=k)) for k in (2, 3)]
    assert own[0]["G"] != own[1]["G"] and own[0]["f_V"] != own[1]["f_V"]
    shared = [selection.instrument_keys(base.replace(sources=k, stand_in_sources=[2, 3])) for k in (2, 3)]
    for part in ("f_V", "G", "f_A"):
        assert shared[0][part] == shared[1][part], part
    assert shared[0]["detector"] != shared[1]["detector"]  # the judges know the run's own groups
    two, three = (base.replace(sources=k, stand_in_sources=[2, 3]) for k in (2, 3))
    groups = protocol.stand_in_groups(two)
    assert groups == protocol.stand_in_groups(three)
    assert {len(g) for g in groups} == {2, 3}
    evaluated = protocol.evaluated_pairs(two) + protocol.evaluated_pairs(three)
    for g in groups:
        for e in evaluated:
            for a, b in ((x, y) for i, x in enumerate(e) for y in e[i + 1 :]):
                assert not (a in g and b in g and (a, b) in set(two.combination_list()) | set(two.unseen())), (g, e)
    n = len(groups) * protocol._standin_per_pair(two)
    assert n >= two.scenes_per_combination * len(two.groups())  # the budget of the two-source run
    assert n < two.scenes_per_combination * len(two.groups()) + len(groups)

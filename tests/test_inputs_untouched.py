"""Issue 10, item 1: a weight file the user gives is used (or refused), never written."""

import hashlib

import pytest
import torch

from avgas import checkpoints, data, models, params, paths, standins

TINY = {
    "fv_steps": 2,
    "g_steps": 2,
    "fa_epochs": 1,
    "scenes_per_combination": 1,
    "stand_in_batch": 8,
    "fv_width_per_group": 4,
    "g_channels": 4,
    "fa_width": 0.05,
}


def digest(path):
    files = sorted(path.rglob("*")) if path.is_dir() else [path]
    return {str(f): hashlib.sha256(f.read_bytes()).hexdigest() for f in files if f.is_file()}


@pytest.fixture
def user_weights(tmp_path):
    """Three weight files in the real formats, where a user keeps them (outside any run folder)."""
    w = tmp_path / "my-weights"
    checkpoints.save_image_encoder(models.image_encoder(4), w / "swav.pth.tar")
    cfg = standins.generator_config(params.load(None, {"g_channels": 4}))
    checkpoints.save_generator(models.Generator(cfg), w / "icgan", best_fid=10.0)
    checkpoints.save_audio_encoder(models.AudioEncoder(width=0.05), w / "sound2scene.pth")
    return {
        "swav_checkpoint": str(w / "swav.pth.tar"),
        "icgan_folder": str(w / "icgan"),
        "sound2scene_checkpoint": str(w / "sound2scene.pth"),
    }


def _world(p):
    data.prepare(p, progress=False)
    return data.catalogue(p)


def test_given_weights_are_used_and_left_byte_identical(small_params, user_weights):
    p = small_params.replace(**TINY, **user_weights)
    params.protect_inputs(p)
    before = {k: digest(paths.resolve(v)) for k, v in user_weights.items()}
    rep = standins.ensure(p, progress=False)
    assert rep["trained"] == [] and rep["G"]["given"] == user_weights["icgan_folder"]
    assert {k: digest(paths.resolve(v)) for k, v in user_weights.items()} == before
    assert not (p.checkpoint_dir / "icgan").exists()  # nothing trained, nothing saved


def test_a_part_not_given_is_trained_into_the_run_folder_only(small_params, user_weights):
    given = {"swav_checkpoint": user_weights["swav_checkpoint"]}
    p = small_params.replace(**TINY, **given)
    params.protect_inputs(p)
    before = digest(paths.resolve(given["swav_checkpoint"]))
    rep = standins.ensure(p, progress=False)
    assert sorted(rep["trained"]) == ["icgan_folder", "sound2scene_checkpoint"]
    assert digest(paths.resolve(given["swav_checkpoint"])) == before
    assert (p.checkpoint_dir / "icgan" / "G_ema_best0.pth").is_file()
    assert not (p.checkpoint_dir / "swav.pth.tar").exists()
    # G was trained on the given f_V's features: loading through the run's paths gives the user's f_V
    fv = checkpoints.load_image_encoder(p.weight_path("swav_checkpoint"))
    assert torch.equal(
        fv.state_dict()["conv1.weight"],
        checkpoints.load_image_encoder(given["swav_checkpoint"]).state_dict()["conv1.weight"],
    )


def test_a_write_to_a_protected_input_is_refused(tmp_path):
    f = tmp_path / "mine.pth"
    f.write_bytes(b"precious")
    paths.protect(f, "sound2scene_checkpoint")
    try:
        with pytest.raises(paths.ProtectedPathError, match="sound2scene_checkpoint"):
            paths.torch_save_atomic({"x": torch.zeros(1)}, f)
        with pytest.raises(paths.ProtectedPathError):
            paths.atomic_write_bytes(f, b"")
    finally:
        paths.unprotect_all()
    assert f.read_bytes() == b"precious" and [x.name for x in tmp_path.iterdir()] == ["mine.pth"]


def test_a_truncated_stand_in_is_detected_and_retrained(small_params, capsys):
    """Issue 10, item 9: the run's own stand-in files are checked against the hashes written when
    they were trained; a damaged one is named and trained again, never loaded as 'Sound2Scene's'."""
    p = small_params.replace(**TINY)
    _world(p)
    first = standins.ensure(p, progress=False)
    assert standins.ensure(p, progress=False)["reused"]
    g = p.checkpoint_dir / "icgan" / "G_ema_best0.pth"
    whole = g.read_bytes()
    g.write_bytes(whole[: len(whole) // 2])
    again = standins.ensure(p, progress=False)
    assert not again["reused"] and "G_ema_best0.pth is damaged" in capsys.readouterr().out
    assert g.read_bytes() == whole  # deterministic retraining gives the same file back
    assert again["hashes"] == first["hashes"]


def test_the_synthetic_world_never_replaces_clips_it_did_not_write(tmp_path):
    """A data_root that already holds someone's clips is refused, not emptied."""
    d = tmp_path / "my-vggsound"
    (d / "audios").mkdir(parents=True)
    (d / "audios" / "abc_0_10000.wav").write_bytes(b"mine")
    p = params.load("params/quick.yaml", {"run_root": str(tmp_path), "data_root": str(d)})
    with pytest.raises(data.DataError, match="did not generate.*data_root"):
        data.prepare(p, progress=False)
    assert (d / "audios" / "abc_0_10000.wav").read_bytes() == b"mine"

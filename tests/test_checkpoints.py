"""Loaders of the three real files, checked against the key lists of the real checkpoints and
on random-weight files written in exactly those formats."""

import json
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from avgas import checkpoints as C
from avgas import models

# Key lists of the real checkpoints (copied into tests/data/checkpoint-keys, so the tests
# never depend on files outside the checkout).
KEYS = Path(__file__).resolve().parent / "data" / "checkpoint-keys"

ICGAN128 = dict(G_ch=96, dim_z=120, resolution=128, G_attn="64", hier=True, shared_dim_feat=512)
SMALL_G = dict(G_ch=4, dim_z=40, resolution=32, G_attn="0", hier=True, shared_dim_feat=32)


def tsv(name):
    rows = [line.rstrip("\n").split("\t") for line in open(KEYS / name)][1:]
    return [(k, json.loads(shape), dtype) for k, shape, dtype, *_ in rows]


def random_state(rows):
    """Random tensors with the listed keys, shapes and dtypes (variances kept positive)."""

    def make(k, s, d):
        if d == "int64":
            return torch.zeros(s, dtype=torch.int64)
        return torch.rand(s) + 0.5 if k.endswith(("running_var", "stored_var")) else torch.randn(s)

    return {k: make(k, s, d) for k, s, d in rows}


def shapes(sd):
    return [(k, list(v.shape)) for k, v in sd.items()]


def test_audio_encoder_matches_sound2scene_keys_and_loads_a_real_format_file(tmp_path):
    rows = tsv("sound2scene_audnet_keys.tsv")
    assert shapes(models.AudioEncoder().state_dict()) == [(k, s) for k, s, _ in rows]
    state = random_state(rows)
    torch.save(state, tmp_path / "sound2scene.pth")
    fa = C.load_audio_encoder(tmp_path / "sound2scene.pth")
    assert torch.equal(fa.state_dict()["audnet.fc.weight"], state["audnet.fc.weight"])
    out = fa(torch.randn(2, 1, 257, 200))
    assert out.shape == (2, 2048) and (out >= 0).all()  # post-ReLU embedding


def test_image_encoder_loads_a_swav_format_file_and_drops_the_heads(tmp_path):
    rows = tsv("swav_800ep_keys.tsv")
    trunk = [
        (k.removeprefix("module."), s)
        for k, s, _ in rows
        if not k.startswith(("module.projection", "module.prototypes"))
    ]
    assert shapes(models.image_encoder().state_dict()) == trunk
    state = random_state(rows)
    torch.save(state, tmp_path / "swav.pth.tar")
    fv = C.load_image_encoder(tmp_path / "swav.pth.tar")
    assert torch.equal(fv.state_dict()["layer4.2.conv3.weight"], state["module.layer4.2.conv3.weight"])
    assert fv(torch.randn(1, 3, 64, 64)).shape == (1, 2048)


def test_generator_matches_icgan_keys_and_loads_an_icgan_folder(tmp_path):
    rows = tsv("icgan_biggan_imagenet_res128_G_keys.tsv")
    G = models.Generator(C.icgan_config(**ICGAN128))
    assert shapes(G.state_dict()) == [(k, s) for k, s, _ in rows]
    assert sum(p.numel() for p in G.parameters()) == 77_160_132
    # an IC-GAN folder: two best files, best1 has the lower FID, so best1's weights must load
    folder = tmp_path / "icgan_biggan_imagenet_res128"
    folder.mkdir()
    for n, fid in ((0, 9.0), (1, 7.5)):
        torch.save(
            {
                "itr": 1,
                "epoch": 1,
                "best_IS": 0.0,
                "best_FID": fid,
                "es_epoch": 0,
                "config": C.icgan_config(**ICGAN128),
            },
            folder / f"state_dict_best{n}.pth",
        )
        torch.save(random_state(rows), folder / f"G_ema_best{n}.pth")
    loaded = C.load_generator(folder)
    expected = torch.load(folder / "G_ema_best1.pth")
    assert torch.equal(loaded.state_dict()["linear.weight"], expected["linear.weight"])


def test_icgan_config_with_pickled_relu_is_loaded_without_unrestricted_unpickling(tmp_path):
    cfg = C.icgan_config(**SMALL_G)
    assert isinstance(cfg["G_activation"], nn.ReLU)
    G = models.Generator(cfg)
    C.save_generator(G, tmp_path / "g", best_fid=3.0)
    with pytest.raises(Exception):  # torch's default safe loader refuses the ReLU
        torch.load(tmp_path / "g" / "state_dict_best0.pth")
    G2 = C.load_generator(tmp_path / "g")
    z, f = torch.randn(2, G2.dim_z), torch.nn.functional.normalize(torch.rand(2, 2048))
    G.eval()
    assert torch.allclose(G(z, None, f), G2(z, None, f))
    # an object outside the allow-list is refused, and the message says which
    torch.save({"config": {"x": nn.Tanh()}, "best_FID": 1.0}, tmp_path / "g" / "state_dict_best1.pth")
    with pytest.raises(C.CheckpointError, match="Tanh"):
        C.load_generator(tmp_path / "g")


def test_the_saved_icgan_config_has_every_key_of_the_released_one_and_a_usable_best_fid(tmp_path):
    """IC-GAN's load_model_inference skips a file with best_FID >= 1e5 and needs G_eval_mode."""
    real_keys = set((KEYS / "icgan_res128_config_keys.txt").read_text().split())
    assert len(real_keys) == 139
    from avgas import params, standins

    G = models.Generator(standins.generator_config(params.load("params/quick.yaml")))
    C.save_generator(G, tmp_path / "g", best_fid=12.5)
    state = torch.load(tmp_path / "g" / "state_dict_best0.pth", weights_only=False)
    assert real_keys <= set(state["config"]), sorted(real_keys - set(state["config"]))
    assert state["config"]["G_eval_mode"] is True and 0 <= state["best_FID"] < 1e5
    assert isinstance(state["config"]["D_activation"], nn.ReLU)
    with pytest.raises(ValueError, match="1e5"):
        C.save_generator(G, tmp_path / "h", best_fid=999999.0)  # IC-GAN's 'never evaluated' value


def test_frechet_distance_is_zero_for_one_set_and_the_squared_shift_for_a_moved_one():
    from avgas.core import scores

    a = torch.randn(400, 8, generator=torch.Generator().manual_seed(0))
    assert scores.frechet(a, a) == pytest.approx(0.0, abs=1e-6)
    assert scores.frechet(a, a + 3.0) == pytest.approx(9 * 8, rel=1e-6)


def test_spectral_norm_recomputes_sigma_from_u0_not_sv0():
    layer = models.SNLinear(6, 4)
    layer.eval()
    w = layer.weight.detach()
    layer.sv0.fill_(123.0)  # only a log: must not be used
    v = torch.nn.functional.normalize(layer.u0 @ w, eps=1e-6)
    u = torch.nn.functional.normalize(v @ w.t(), eps=1e-6)
    sv = ((v @ w.t()) @ u.t()).squeeze()
    x = torch.randn(3, 6)
    assert torch.allclose(layer(x), x @ (w / sv).t() + layer.bias, atol=1e-6)


def test_round_trips_of_small_models(tmp_path):
    fa = models.AudioEncoder(width=0.25)
    C.save_audio_encoder(fa, tmp_path / "a.pth")
    fa2 = C.load_audio_encoder(tmp_path / "a.pth")
    x = torch.randn(2, 1, 257, 40)
    fa.eval()
    assert torch.equal(fa(x), fa2(x))
    fv = models.image_encoder(width_per_group=8)
    C.save_image_encoder(fv, tmp_path / "v.pth.tar", heads={"projection_head.0.weight": torch.randn(4, 2048)})
    fv2 = C.load_image_encoder(tmp_path / "v.pth.tar")
    fv.eval()
    img = torch.randn(2, 3, 32, 32)
    assert torch.equal(fv(img), fv2(img))


def test_wrong_files_are_refused_with_file_key_and_source(tmp_path):
    with pytest.raises(C.CheckpointError, match=r"nothing\.pth: file not found.*sound2scene_checkpoint.*Sound2Scene"):
        C.load_audio_encoder(tmp_path / "nothing.pth")
    torch.save(models.image_encoder(8).state_dict(), tmp_path / "resnet.pth")
    with pytest.raises(C.CheckpointError, match=r"no 'audnet\.' keys"):
        C.load_audio_encoder(tmp_path / "resnet.pth")
    torch.save({"audnet.conv1.weight": torch.zeros(1)}, tmp_path / "junk.pth")
    with pytest.raises(C.CheckpointError, match=r"junk\.pth"):
        C.load_audio_encoder(tmp_path / "junk.pth")
    (tmp_path / "trunc.pth.tar").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(C.CheckpointError, match=r"not a readable torch file.*swav_checkpoint"):
        C.load_image_encoder(tmp_path / "trunc.pth.tar")
    torch.save(models.AudioEncoder(0.25).state_dict(), tmp_path / "audio.pth.tar")
    with pytest.raises(C.CheckpointError, match="no ResNet-50 trunk keys"):
        C.load_image_encoder(tmp_path / "audio.pth.tar")
    (tmp_path / "icgan").mkdir()
    torch.save({"best_FID": 1.0}, tmp_path / "icgan" / "state_dict_best0.pth")
    with pytest.raises(C.CheckpointError, match="no 'config'"):
        C.load_generator(tmp_path / "icgan")
    with pytest.raises(C.CheckpointError, match="icgan_folder"):
        C.load_generator(tmp_path / "missing")

"""The matched controls: f_A fine-tuned on the mixtures towards the blend of the f_A targets (A2A's
control) and of the f_V targets (A2V's), trained, selected and reported beside the separators."""

import fakes
import pytest
import torch

from avgas import checkpoints, losses, models, params, results, separators, train
from avgas.core import separator

fake_data = fakes.separator_data


def test_a2v_control_aligns_with_the_blend_of_the_image_features():
    g = torch.Generator().manual_seed(0)
    h = torch.randn(8, 16, generator=g)
    targets = {"A": (torch.randn(8, 16, generator=g), torch.randn(8, 16, generator=g))}
    targets["V"] = (torch.randn(8, 16, generator=g), torch.randn(8, 16, generator=g))
    got = losses.separator_loss((h, h), targets, losses.CONTROL_V)
    want = losses.symmetric_infonce(h, losses.blended_target(*targets["V"]))
    assert torch.allclose(got, want)
    assert not torch.allclose(got, losses.separator_loss((h, h), targets, losses.CONTROL))  # not A2A's target


def test_both_controls_are_trained_per_seed_and_named_apart():
    p = params.load("params/quick.yaml")
    kinds = train.trained_models(p)
    for r in separators.replicas(p):
        assert (losses.CONTROL, r) in kinds and (losses.CONTROL_V, r) in kinds
    assert train.method_name(losses.CONTROL_V, 1) == separators.CONTROL_V_NAME + "#1"
    assert separators.CONTROL_V_NAME == results.CONTROL_V and separators.CONTROL_NAME == results.CONTROL
    assert not any(k in (losses.CONTROL, losses.CONTROL_V) for k, _ in train.trained_models(p.replace(control=False)))


def test_the_a2v_control_has_its_row_and_its_paired_claim():
    assert results.CONTROL_V in results.METHODS and results.CONTROL_V in results.SEEDED
    cmp = results.comparisons(2)
    for metric in ("CRS", "R@2*"):
        assert ("mixed", metric, "A2V", results.CONTROL_V) in cmp
        assert ("mixed", metric, results.CONTROL_V, "Sound2Scene") in cmp
    per_tuple = {"mixed": {m: {"CRS": [[1, 0, 1, 1]]} for m in ("A2V", results.CONTROL_V)}}
    assert "A2V - " + results.CONTROL_V in results.paired({"per_tuple": per_tuple})


@pytest.mark.parametrize("kind", [losses.CONTROL, losses.CONTROL_V])
def test_a_control_starts_from_f_a_and_trains_with_the_same_selection(tmp_path, kind):
    p = params.load("params/quick.yaml", {"run_root": str(tmp_path), "epochs": 2, "batch_size": 8})
    fa = models.AudioEncoder(width=0.25, out_dim=16)
    p.checkpoint_dir.mkdir(parents=True)
    checkpoints.save_audio_encoder(fa, p.weight_path("sound2scene_checkpoint"))
    r = train.train_separator(p, kind, fake_data(24, 1), fake_data(16, 2), progress=False)
    assert len(r.history["val_loss"]) == 2 and r.best_val == min(r.history["val_loss"])
    model = separators.load_separator(p, kind)
    assert isinstance(model, models.MixEncoder)
    h = separator.separate(model, torch.randn(3, 257, 24))
    assert torch.equal(h[0], h[1])  # one embedding per mix: Table 1 only

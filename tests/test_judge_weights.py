"""The real run's judge files: clear errors for bad files, and the Inception path end to end on a
randomly initialised file in torch-fidelity's exact format (no download anywhere)."""

import fakes
import pytest
import torch

from avgas import checkpoints, metrics, params


def _p(tmp_path, **kw):
    return params.load("params/quick.yaml", {"run_root": str(tmp_path), "world": "synthetic", **kw})


@pytest.fixture(scope="module")
def inception_file(tmp_path_factory):
    torch.manual_seed(0)
    return fakes.inception_file(tmp_path_factory.mktemp("weights") / "weights-inception-2015-12-05-6726825d.pth")


def test_missing_inception_file_names_file_key_and_source(tmp_path):
    p = _p(tmp_path, inception_weights=str(tmp_path / "nowhere.pth"))
    with pytest.raises(checkpoints.CheckpointError) as e:
        checkpoints.inception_weights(p)
    msg = str(e.value)
    assert "nowhere.pth: file not found" in msg and "'inception_weights'" in msg and "torch-fidelity" in msg


def test_wrong_inception_files_are_refused_before_torchmetrics(tmp_path):
    bad = tmp_path / "truncated.pth"
    bad.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(checkpoints.CheckpointError, match="not a readable torch file"):
        checkpoints.inception_weights(_p(tmp_path, inception_weights=str(bad)))
    other = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, other)
    with pytest.raises(checkpoints.CheckpointError, match="not the FID Inception"):
        checkpoints.inception_weights(_p(tmp_path, inception_weights=str(other)))


def test_fid_and_is_run_on_a_local_inception_file(tmp_path, inception_file):
    path = checkpoints.inception_weights(_p(tmp_path, inception_weights=str(inception_file)))
    gen = torch.Generator().manual_seed(0)
    a = torch.randint(0, 256, (8, 32, 32, 3), dtype=torch.uint8, generator=gen)
    b = torch.randint(0, 256, (8, 32, 32, 3), dtype=torch.uint8, generator=gen)
    assert metrics.fid(a, a, 2048, weights_path=path) == pytest.approx(0.0, abs=1e-2)
    assert metrics.fid(a, b // 4, 2048, weights_path=path) > 0
    assert metrics.inception_score(a, "logits_unbiased", weights_path=path) >= 1.0


def test_clip_file_is_checked_against_its_architecture(tmp_path):
    import open_clip

    from avgas import judges

    judges._open_clip()
    good = tmp_path / "open_clip_pytorch_model.bin"
    torch.save(open_clip.create_model("avgas-clip-tiny", pretrained=None).state_dict(), good)
    assert "avgas-clip-tiny" in judges.clip_file_info(good, "avgas-clip-tiny")
    with pytest.raises(checkpoints.CheckpointError, match="not OpenCLIP ViT-B-32.*'clip_checkpoint'"):
        judges.clip_file_info(good, "ViT-B-32")  # the tiny file is not the paper's model


def test_check_lists_every_missing_file_with_its_key(tmp_path, capsys):
    from avgas import cli

    args = [
        "check",
        "params/vggsound.yaml",
        "-p",
        f"data_root={tmp_path}/vgg",
        "-p",
        f"metadata_csv={tmp_path}/vgg.csv",
    ]
    for key in (
        "sound2scene_checkpoint",
        "swav_checkpoint",
        "inception_weights",
        "detector_weights",
        "clip_checkpoint",
    ):
        args += ["-p", f"{key}={tmp_path}/{key}.pth"]
    args += ["-p", f"icgan_folder={tmp_path}/icgan"]
    assert cli.main(args) == 1
    out = capsys.readouterr().out
    assert out.count("[missing]") >= 9 and "params key 'detector_weights'" in out and "yolov8x-worldv2" in out
    assert cli.main(["check", "params/quick.yaml", "-p", f"run_root={tmp_path}"]) == 0

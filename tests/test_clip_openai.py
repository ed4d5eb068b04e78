"""The paper's R@K judge by default (issue 25): OpenAI's CLIP ViT-B/32, which in OpenCLIP is the
QuickGELU architecture. Checkpoints of that architecture are built here (no download) and loaded
by the run's loader; OpenAI's weights in the GELU architecture are refused."""

import json

import open_clip
import pytest
import torch

from avgas import checkpoints, params
from avgas.judges import clip


def _config(quick: bool) -> dict:
    """ViT-B-32-quickgelu's config at toy widths (the same layout of keys), QuickGELU or not."""
    real = open_clip.get_model_config(clip.OPENAI_ARCH)
    assert real["quick_gelu"] is True and real["vision_cfg"]["patch_size"] == 32
    return {
        "embed_dim": 64,
        "quick_gelu": quick,
        "vision_cfg": {**real["vision_cfg"], "layers": 2, "width": 64, "image_size": 64},
        "text_cfg": {**real["text_cfg"], "layers": 1, "width": 64, "heads": 2, "context_length": 16},
    }


def _checkpoint(folder, quick: bool, name: str):
    (folder / f"{name}.json").write_text(json.dumps(_config(quick)))
    arch = clip.clip_architecture(str(folder / f"{name}.json"))
    torch.manual_seed(0)
    model = open_clip.create_model(arch, pretrained=None)
    weights = folder / "vit_base_patch32_clip_224.openai" / clip.OPENAI_FILE
    weights.parent.mkdir(exist_ok=True)
    torch.save(model.state_dict(), weights)
    return model.eval(), weights, str(folder / f"{name}.json")


def test_the_paper_clip_is_named_by_default():
    p = params.load("params/vggsound.yaml")
    assert p.clip_model == clip.OPENAI_ARCH == "ViT-B-32-quickgelu"
    assert p.clip_checkpoint.endswith(f"vit_base_patch32_clip_224.openai/{clip.OPENAI_FILE}")
    assert p.frames_json.endswith("top1_boxes_top10_moments.json")
    assert "ViT-B-32-quickgelu" in checkpoints.where_to_get("clip_checkpoint")
    with torch.device("meta"):  # the full architecture, shapes only: QuickGELU, ViT-B/32's 512-d embedding
        model = open_clip.create_model(clip.OPENAI_ARCH, pretrained=None, device="meta")
    assert clip.quick_gelu(model) and model.text_projection.shape[1] == 512


def test_a_quickgelu_checkpoint_loads_with_its_activation(tmp_path):
    model, weights, arch = _checkpoint(tmp_path, quick=True, name="toy-quickgelu")
    loaded, tokenizer, _ = clip.load_clip_file(weights, arch)
    assert clip.quick_gelu(loaded)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded.encode_image(x), model.encode_image(x))
    assert "QuickGELU" in clip.clip_file_info(weights, arch)


def test_openai_weights_in_the_gelu_architecture_are_refused(tmp_path):
    _, weights, _ = _checkpoint(tmp_path, quick=True, name="toy-quickgelu2")
    (tmp_path / "gelu.json").write_text(json.dumps(_config(False)))  # the same keys and shapes, GELU
    with pytest.raises(checkpoints.CheckpointError, match="QuickGELU: set clip_model: ViT-B-32-quickgelu"):
        clip.load_clip_file(weights, str(tmp_path / "gelu.json"))


@pytest.mark.slow  # ~600 MB written and read: the full ViT-B-32-quickgelu
def test_a_full_size_openai_layout_checkpoint_loads(tmp_path):
    model = open_clip.create_model(clip.OPENAI_ARCH, pretrained=None)
    weights = tmp_path / "vit_base_patch32_clip_224.openai" / clip.OPENAI_FILE
    weights.parent.mkdir()
    torch.save(model.state_dict(), weights)
    loaded, _, name = clip.load_clip_file(weights, clip.OPENAI_ARCH)
    assert name == clip.OPENAI_ARCH and clip.quick_gelu(loaded)


def test_substituted_parts_are_said_beside_the_tables():
    from avgas import book

    p = params.load("params/vggsound.yaml")
    assert book.substitutions(p) == [] and book.substitutions_note(p) == ""
    laion = p.replace(
        frames_json=None, clip_checkpoint="weights/open_clip_vit_b_32_laion2b_s34b_b79k.bin", clip_model="ViT-B-32"
    )
    subs = book.substitutions(laion.to_dict())  # as the book reads a run's params.yaml
    assert len(subs) == 2 and "middle frame" in subs[0] and "LAION-2B weights" in subs[1]
    assert book.substitutions_note(laion).startswith("## Parts that differ from the paper's")
    assert book.substitutions(params.load("params/quick.yaml")) == []  # the synthetic world


def test_check_says_which_file_each_key_expects(tmp_path):
    from avgas import check

    _, weights, arch = _checkpoint(tmp_path, quick=True, name="toy-quickgelu3")
    p = params.load(
        "params/vggsound.yaml",
        {"clip_checkpoint": str(weights), "clip_model": arch, "data_root": str(tmp_path / "d"), "device": "cpu"},
    )
    t = check.check(p)
    row = t.loc["clip checkpoint"]
    assert row["status"] == "ok" and "QuickGELU" in row["detail"], row["detail"]
    assert "expects OpenAI's CLIP ViT-B/32" in row["detail"] and "ViT-B-32-quickgelu" in row["detail"]
    for key in ("sound2scene checkpoint", "swav checkpoint", "detector weights"):  # not here: named with their file
        assert t.loc[key, "status"] == "missing" and "expected" in t.loc[key, "detail"]

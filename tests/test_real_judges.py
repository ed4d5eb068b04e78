"""The real run's detector path on Ultralytics files made here: a randomly initialised YOLO-World
saved as a normal `.pt` (as yolov8x-worldv2.pt is), loaded with its vocabulary set from local text
embeddings, and run through the same `detect` as the synthetic judge."""

import pytest
import torch

from avgas import checkpoints, judges, params


def word_vector(word: str) -> torch.Tensor:
    """A 512-d embedding that depends on the word alone (so an order mix-up shows)."""
    return torch.randn(512, generator=torch.Generator().manual_seed(sum(map(ord, word))))


class TextTower:
    """Stands in for OpenCLIP ViT-B-32's text side: 512-d embeddings (what YOLO-World reads)."""

    def encode_text(self, tokens):
        return torch.stack([word_vector(w) for w in tokens])


@pytest.fixture(scope="module")
def world_file(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("yw")
    ul = judges._ultralytics(tmp / "ul")
    model = ul.YOLO("yolov8s-worldv2.yaml")  # builds offline, random weights
    f = tmp / "yolov8x-worldv2.pt"
    model.save(str(f))
    plain = tmp / "yolov8n.pt"
    ul.YOLO("yolov8n.yaml").save(str(plain))
    return f, plain


def test_yolo_world_file_detects_with_local_prompt_embeddings(tmp_path, world_file):
    f, _ = world_file
    p = params.load("params/quick.yaml", {"run_root": str(tmp_path), "detector_weights": str(f)})
    words = ["dog", "rain", "sea"]
    model = judges.load_real_detector(p, TextTower(), lambda ws: ws, words)
    # class k of a detection is named names[k] and detected with the text embedding of that same word
    names = model.model.names
    assert sorted(names.values()) == sorted(words) and model.model.txt_feats.shape == (1, 3, 512)
    for k, w in names.items():
        assert torch.allclose(model.model.txt_feats[0, k], torch.nn.functional.normalize(word_vector(w), dim=0))
    images = torch.randint(0, 256, (3, 64, 64, 3), dtype=torch.uint8)
    found = judges.detect(model, images, words, conf=0.001, view=64)
    assert len(found) == 3 and all(f <= set(words) for f in found)


def test_wrong_detector_files_are_named(tmp_path, world_file):
    _, plain = world_file
    p = params.load("params/quick.yaml", {"run_root": str(tmp_path), "detector_weights": str(plain)})
    with pytest.raises(checkpoints.CheckpointError, match="not YOLO-World"):
        judges.load_real_detector(p, TextTower(), lambda ws: ws, ["dog"])
    junk = tmp_path / "yolov8x-worldv2.pt"
    junk.write_bytes(b"not a model")
    with pytest.raises(checkpoints.CheckpointError, match="not an Ultralytics weights file.*'detector_weights'"):
        judges.detector_file_info(junk)
    with pytest.raises(checkpoints.CheckpointError, match="file not found"):
        judges.detector_file_info(tmp_path / "nowhere.pt")

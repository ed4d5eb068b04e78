"""avgas/core holds the paper's method and metrics on their own (issue 24): it imports nothing else of
avgas, the judges count CRS (Eq. 5) and R@K with its per-image terms, and a trained separator read
back from its weights is the one that was trained."""

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

from avgas.core import generation, scores, separator
from avgas.judges.clip import ClipJudge
from avgas.judges.detector import DetectorJudge

CORE = Path(__file__).resolve().parents[1] / "avgas" / "core"


def test_core_imports_nothing_else_of_avgas_and_knows_no_params():
    outside = []
    for f in sorted(CORE.glob("*.py")):
        tree = ast.parse(f.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            outside += [
                f"{f.name}: {n}" for n in names if n.split(".")[0] == "avgas" and not n.startswith("avgas.core")
            ]
            if isinstance(node, ast.arg) and node.arg == "p":  # a Params argument, by the package's naming
                outside.append(f"{f.name}: takes params (p)")
    assert not outside, outside


def test_crs_and_r_at_k_terms():
    found = [{"dog", "sea"}, {"dog"}, set()]
    assert scores.represented(found, [{"dog", "sea"}] * 3).tolist() == [True, False, False]
    assert scores.crs(found, [{"dog"}] * 3) == pytest.approx(2 / 3)
    ranked = [["dog", "sea", "rain"], ["sea", "rain", "dog"], ["rain", "dog", "sea"]]
    assert scores.ranked_hits(ranked, [{"dog", "sea"}] * 3).tolist() == [True, False, False]  # R@2*
    assert scores.ranked_hits(ranked, [{"sea"}] * 3).tolist() == [False, True, False]  # R@1
    with pytest.raises(ValueError):  # a row dropped on the way is an error, never a shorter score
        scores.represented(found[:2], [{"dog"}] * 3)


class _Words:
    """A judge that sees fixed words (found sets for the detector, rankings for CLIP)."""

    def __init__(self, out):
        self.out = out

    def __call__(self, images, k=None):
        return self.out


def test_the_judges_count_with_cores_terms(monkeypatch):
    images = torch.zeros(3, 8, 8, 3, dtype=torch.uint8)
    found = [{"dog", "sea"}, {"dog"}, set()]
    ranked = [["dog", "sea"], ["sea", "dog"], ["rain", "dog"]]
    det = DetectorJudge("detector", {}, 8)
    monkeypatch.setattr(det, "words", _Words(found))
    clip = ClipJudge("clip", {}, 8)
    monkeypatch.setattr(clip, "words", _Words(ranked))
    for wanted in ([{"dog", "sea"}] * 3, [{"dog"}] * 3):
        assert det.hits(images, wanted).tolist() == scores.represented(found, wanted).tolist()
        assert clip.hits(images, wanted).tolist() == scores.ranked_hits(ranked, wanted).tolist()
    calls = []
    monkeypatch.setattr(scores, "represented", lambda f, w: calls.append("CRS") or np.ones(len(w), bool))
    monkeypatch.setattr(scores, "ranked_hits", lambda r, w: calls.append("R@K") or np.ones(len(w), bool))
    det.hits(images, [{"dog"}] * 3)
    clip.hits(images, [{"dog"}] * 3)
    assert calls == ["CRS", "R@K"]  # defined once, in core


@pytest.mark.parametrize("kind", ["Separator", "MixEncoder"])
def test_a_separator_read_back_from_its_weights_is_the_trained_one(kind):
    torch.manual_seed(0)
    cls = separator.Separator if kind == "Separator" else separator.MixEncoder
    model = cls(width=0.125, dim=16, sources=3).eval()
    back = separator.from_state(model.state_dict(), kind, sources=3)
    mix = torch.randn(4, 257, 24)
    with torch.no_grad():
        want = model(mix)
    got = separator.separate(back, mix, batch=3)  # batches of 3: the last one short
    assert len(got) == 3 and all(torch.allclose(a, b, atol=1e-5) for a, b in zip(want, got))  # batch sizes differ


def test_every_method_gets_the_same_noise():
    class G(torch.nn.Module):  # an image that is z plus the feature, so the noise shows
        dim_z, resolution = 3, 1

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, z, label, h):
            return (0.1 * z[:, :3] + 0.1 * h[:, :3]).view(-1, 3, 1, 1)

    h = torch.randn(5, 3)
    images = generation.images_for(G(), {"a": h, "b": h.clone()}, seed=1)
    assert torch.equal(images["a"], images["b"])
    other = generation.images_for(G(), {"a": h}, seed=2)
    assert not torch.equal(images["a"], other["a"])

import math

import pytest
import torch

from avgas import losses


def direct_infonce(x, y):
    """-(1/B) sum_i log softmax_k(-|x_i/|x_i| - y_k/|y_k||)[i], written out with loops."""
    B = len(x)
    xs = [v / v.norm() for v in x]
    ys = [v / v.norm() for v in y]
    total = 0.0
    for i in range(B):
        logits = [-(xs[i] - ys[k]).norm().item() for k in range(B)]
        total += -(logits[i] - math.log(sum(math.exp(v) for v in logits)))
    return total / B


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    r = lambda: torch.rand(5, 12, generator=g)  # noqa: E731  (non-negative, like ReLU embeddings)
    return dict(h_fg=r(), h_bg=r(), a_fg=r(), a_bg=r(), v_fg=r(), v_bg=r())


def test_infonce_matches_the_written_out_formula(batch):
    assert losses.infonce(batch["h_fg"], batch["a_fg"]).item() == pytest.approx(
        direct_infonce(batch["h_fg"], batch["a_fg"]), rel=1e-5
    )


def test_separator_losses_are_eq_2_and_3(batch):
    b = batch
    targets = {"A": (b["a_fg"], b["a_bg"]), "V": (b["v_fg"], b["v_bg"])}
    eq = {}
    for kind, (t_fg, t_bg) in {"A": (b["a_fg"], b["a_bg"]), "V": (b["v_fg"], b["v_bg"])}.items():
        eq[kind] = (  # sums: 4x the 1/(2B) mean with halves averaged
            direct_infonce(b["h_fg"], t_fg)
            + direct_infonce(t_fg, b["h_fg"])
            + direct_infonce(b["h_bg"], t_bg)
            + direct_infonce(t_bg, b["h_bg"])
        )
    got = {a: losses.separator_loss((b["h_fg"], b["h_bg"]), targets, a).item() for a in losses.ALIGNMENTS}
    assert got["A2A"] == pytest.approx(eq["A"], rel=1e-5)  # Eq. 2
    assert got["A2V"] == pytest.approx(eq["V"], rel=1e-5)  # Eq. 3
    assert got["A2A+A2V"] == pytest.approx(eq["A"] + eq["V"], rel=1e-5)  # Eq. 2 + Eq. 3


def test_perfect_alignment_has_lower_loss_than_swapped_halves(batch):
    b = batch
    targets = {"A": (b["a_fg"], b["a_bg"]), "V": (b["v_fg"], b["v_bg"])}
    right = losses.separator_loss((b["a_fg"] * 3, b["a_bg"] * 3), targets, "A2A")  # scale-free
    swapped = losses.separator_loss((b["a_bg"], b["a_fg"]), targets, "A2A")
    assert right < swapped
    with pytest.raises(ValueError, match="A2X"):
        losses.separator_loss((b["h_fg"], b["h_bg"]), targets, "A2X")

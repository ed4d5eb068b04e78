"""The alignment losses of Sound2Scene and AV-GAS (paper Eq. 1-3).

Both models compare unit vectors by negative Euclidean distance, with no temperature:

    logits[i, k] = -|| x_i/|x_i| - y_k/|y_k| ||_2
    l(x, y)      = cross-entropy(logits, diagonal)       (InfoNCE over the batch)

A2A  (Eq. 1): sum over the two halves j of l(h_j, f_A(a_j)) + l(f_A(a_j), h_j)
A2V  (Eq. 2): the same against f_V(v_j), the image of source j
A2A+A2V (Eq. 3): their sum.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

ALIGNMENTS = ("A2A", "A2V", "A2A+A2V")


def l2_logits(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return -torch.cdist(F.normalize(x, dim=1), F.normalize(y, dim=1))


def infonce(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """l(x, y): each x_i must pick its own y_i among the batch's y."""
    logits = l2_logits(x, y)
    return F.cross_entropy(logits, torch.arange(len(x), device=x.device))


def symmetric_infonce(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return infonce(x, y) + infonce(y, x)


CONTROL = "control"  # f_A fine-tuned on mixtures towards one blended target: training on mixtures, no separation


def blended_target(t_fg: torch.Tensor, t_bg: torch.Tensor) -> torch.Tensor:
    """The control's target: the normalised sum of the two sources' unit A2A targets."""
    return F.normalize(F.normalize(t_fg, dim=1) + F.normalize(t_bg, dim=1), dim=1)


def separator_loss(h_fg: torch.Tensor, h_bg: torch.Tensor, targets: dict, alignment: str) -> torch.Tensor:
    """AV-GAS's loss for one batch. targets: {'A': (f_A(a_fg), f_A(a_bg)), 'V': (f_V(v_fg), f_V(v_bg))};
    alignment: 'A2A', 'A2V' or 'A2A+A2V'; or 'control': one embedding of the mix (h_fg is h_bg)
    aligned with the blend of the two A2A targets, the same InfoNCE."""
    if alignment == CONTROL:
        return symmetric_infonce(h_fg, blended_target(*targets["A"]))
    if alignment not in ALIGNMENTS:
        raise ValueError(f"alignment {alignment!r}; allowed: {ALIGNMENTS} or {CONTROL!r}")
    total = h_fg.new_zeros(())
    for kind in alignment.replace("2", "").split("+"):  # 'A2A+A2V' -> ['AA', 'AV']: target = last letter
        t_fg, t_bg = targets[kind[-1]]
        total = total + symmetric_infonce(h_fg, t_fg) + symmetric_infonce(h_bg, t_bg)
    return total

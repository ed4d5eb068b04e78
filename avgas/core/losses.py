"""The alignment losses of Sound2Scene and AV-GAS (the paper's Eq. 1-3, Sec. 3.3.1).

Both models compare unit vectors by negative Euclidean distance, with no temperature:

    logits[i, k] = -|| x_i/|x_i| - y_k/|y_k| ||_2
    l(x, y)      = cross-entropy(logits, diagonal)       (Eq. 1's InfoNCE, averaged over the batch)

A2A  (Eq. 2): sum over the two halves j of l(h_j, f_A(a_j)) + l(f_A(a_j), h_j)
A2V  (Eq. 3): the same against f_V(v_j), the image of source j
A2A+A2V: their sum (the paper prints no equation of its own for it).

The scale differs from the paper's. Eq. 2-3 carry the factor 1/(2B): the mean over the batch
*and over the two directions*. `symmetric_infonce` sums the two directions (2x), and
`separator_loss` sums the two halves (fg, bg), which the paper does not print how it combines:
our loss is 2x the paper's if its halves are summed, 4x if they are averaged (A2A+A2V, the sum of
both, 4-8x). Adam is blind to a loss's scale but not to its coupled weight decay (torch's
`weight_decay` adds wd * theta to the gradient before the moments): training s * L with decay wd
takes exactly the steps of L with decay wd / s (up to Adam's eps). So `weight_decay: 1e-5` here
acts as 2.5e-6 would on the paper's scale (halves averaged). Kept as it is because the runs' numbers
depend on it; book/method.md states the difference and what it changed when measured once on
validation.

Beyond the paper: with K sources the sums run over K slots, and a `-PIT` alignment pairs slots
with sources per tuple by the assignment that fits best (see `separator_loss`).
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

ALIGNMENTS = ("A2A", "A2V", "A2A+A2V")


def l2_logits(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return -torch.cdist(F.normalize(x, dim=1), F.normalize(y, dim=1))


def infonce(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """l(x, y): each x_i must pick its own y_i among the batch's y."""
    logits = l2_logits(x, y)
    return F.cross_entropy(logits, torch.arange(len(x), device=x.device))


def symmetric_infonce(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Both directions of Eq. 2-3's sum, added: 2x the paper's 1/(2B) mean (see the module's note)."""
    return infonce(x, y) + infonce(y, x)


CONTROL = "control"  # f_A fine-tuned on mixtures towards the blend of the f_A targets (A2A's control)
CONTROL_V = "control-V"  # the same towards the blend of the f_V targets (A2V's control)
CONTROLS = (CONTROL, CONTROL_V)  # training on mixtures, no separation: "is it separation, or the mixtures?"
PIT = "-PIT"  # suffix of a separator trained with permutation-invariant slot assignment


def base_alignment(alignment: str) -> str:
    """'A2A-PIT' -> 'A2A': the targets a separator aligns with, whatever its slot assignment."""
    return alignment.removesuffix(PIT)


def is_pit(alignment: str) -> bool:
    return alignment.endswith(PIT)


def _kinds(alignment: str) -> list[str]:
    """The target kinds of an alignment: 'A2A' -> ['A'], 'A2A+A2V' -> ['A', 'V']."""
    return [part[-1] for part in base_alignment(alignment).split("+")]


def blended_target(*targets: torch.Tensor) -> torch.Tensor:
    """A control's target: the normalised sum of the sources' unit targets (f_A's for A2A's
    control, f_V's for A2V's): the equal blend, lambda = 0.5, of Eq. 4's mixed condition."""
    return F.normalize(sum(F.normalize(t, dim=1) for t in targets), dim=1)


# ------------------------------------------------------------------ slot assignment (PIT)
#
# The paper's separator reads slot 1 as the foreground and slot 2 as the background: the fg/bg
# label is part of the training signal. Permutation-invariant training (PIT, as in speech
# separation) drops it: for each tuple, the slots are matched to the sources by the assignment
# pi that minimises the tuple's alignment cost
#
#     cost_i(pi) = sum over slots s and target kinds X of || h_{i,s}/|h_{i,s}| - t^X_{i,pi(s)}/|t^X_{i,pi(s)}| ||
#
# (the distance of each slot to the source it is paired with: the positive term of the InfoNCE
# logits, the only part of the loss that depends on this tuple's own pairing alone), and the
# InfoNCE loss is then taken with the targets in that order. The cost is local to the tuple, so
# shuffling a tuple's sources shuffles its assignment with them and leaves the loss unchanged.


def assignment_cost(slots, targets: dict, kinds: list[str]) -> torch.Tensor:
    """(B, K, K): cost[i, s, j] = distance of tuple i's slot s to its source j, summed over kinds."""
    h = torch.stack([F.normalize(x.detach().float(), dim=1) for x in slots], 1)  # (B, K, D)
    cost = h.new_zeros(h.shape[0], h.shape[1], h.shape[1])
    for kind in kinds:
        t = torch.stack([F.normalize(x.detach().float(), dim=1) for x in targets[kind]], 1)
        cost = cost + torch.cdist(h, t)
    return cost


def best_assignment(cost: torch.Tensor, exhaustive_up_to: int = 4) -> torch.Tensor:
    """(B, K) long: perm[i, s] = the source slot s of tuple i is matched with, minimising the
    summed cost. Exhaustive over the K! permutations for small K (the identity is tried first,
    so a tie keeps the fixed order), the Hungarian algorithm beyond."""
    b, k, _ = cost.shape
    if k <= exhaustive_up_to:
        perms = torch.tensor(list(itertools.permutations(range(k))), device=cost.device)  # (P, K)
        slots = torch.arange(k, device=cost.device)
        totals = cost[:, slots, perms].sum(-1)  # (B, P): cost[i, s, perm[p, s]] summed over s
        return perms[totals.argmin(1)]
    return torch.stack([torch.as_tensor(linear_sum_assignment(c.cpu().numpy())[1]) for c in cost]).to(cost.device)


def reorder(sources, perm: torch.Tensor) -> tuple:
    """The sources (K tensors of (B, D)) in the slots' order: slot s of row i gets source perm[i, s]."""
    stacked = torch.stack(list(sources), 1)  # (B, K, D)
    picked = stacked[torch.arange(len(perm), device=perm.device)[:, None], perm]
    return tuple(picked.unbind(1))


def assign(slots, targets: dict, alignment: str) -> torch.Tensor:
    """The PIT assignment of an alignment's slots to the sources: (B, K) long."""
    return best_assignment(assignment_cost(slots, targets, _kinds(alignment)))


def separator_loss(slots, targets: dict, alignment: str) -> torch.Tensor:
    """AV-GAS's loss for one batch: Eq. 2 (A2A), Eq. 3 (A2V) or their sum, with the halves
    summed (2-4x the paper's scale: see the module's note).

    slots: the separator's K outputs (h_fg, ..., h_bg), each (B, D); targets: {'A': (f_A of each
    source), 'V': (f_V of each source's image)}, in the same source order; alignment: 'A2A',
    'A2V', 'A2A+A2V' (slot s aligned with source s, the paper's fixed order), the same with
    '-PIT' (slots aligned with the sources under the per-tuple assignment that minimises the
    cost above), or 'control' / 'control-V': one embedding of the mix (every slot the same)
    aligned with the blend of the sources' A2A targets / A2V targets, the same InfoNCE."""
    if alignment in CONTROLS:
        return symmetric_infonce(slots[0], blended_target(*targets["A" if alignment == CONTROL else "V"]))
    if base_alignment(alignment) not in ALIGNMENTS:
        raise ValueError(f"alignment {alignment!r}; allowed: {ALIGNMENTS}, each with {PIT!r}, or one of {CONTROLS}")
    if is_pit(alignment):
        perm = assign(slots, targets, alignment)
        targets = {kind: reorder(targets[kind], perm) for kind in _kinds(alignment)}
    total = slots[0].new_zeros(())
    for kind in _kinds(alignment):
        for h, t in zip(slots, targets[kind], strict=True):
            total = total + symmetric_infonce(h, t)
    return total

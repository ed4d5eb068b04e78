"""The paper's per-image scores: Eq. 5's CRS term (a detector) and R@K's (CLIP's ranking).

Both judge one generated image against the classes it should show: every class of its mix for a
mixed image, its own source's class for a separated one. The judges (avgas.judges) find the words
and rank the prompts; these functions only count.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import linalg


def represented(found: list[set], wanted: list[set]) -> np.ndarray:
    """Eq. 5's term per image: does the detector find every class the image should show?"""
    return np.array([w <= f for f, w in zip(found, wanted, strict=True)], dtype=bool)


def crs(found: list[set], wanted: list[set]) -> float:
    """CRS_N (Eq. 5): the share of images in which the detector finds every class it should (both
    for a mixed image, the one source for a separated image)."""
    return float(represented(found, wanted).mean()) if wanted else float("nan")


def ranked_hits(ranked: list[list], wanted: list[set]) -> np.ndarray:
    """R@K's term per image (Sec. 4.1; the paper gives it no number): are all K wanted classes among
    the image's K best-ranked prompts? R@1 for a separated image (one class), R@2* for a mixed one
    (both classes of the pair in the top two). `ranked`: per image, prompts best first."""
    return np.array([w <= set(r[: len(w)]) for w, r in zip(wanted, ranked, strict=True)], dtype=bool)


def topk_hits(logits: torch.Tensor, wanted: list[set[int]], k: int) -> np.ndarray:
    """Per image: are all wanted class indices among the top k of its scores (logits or CLIP's
    similarities, one column per class)?"""
    top = logits.topk(k, dim=1).indices.tolist()
    return np.array([w <= set(t) for t, w in zip(top, wanted)])


def frechet(a: torch.Tensor, b: torch.Tensor) -> float:
    """The Fréchet distance of two feature sets (rows), FID's formula (Sec. 4.1) in any feature space:
    |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))."""
    a, b = a.double().numpy(), b.double().numpy()
    mu, s_a, s_b = a.mean(0) - b.mean(0), np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(s_a @ s_b)
    return float(max(0.0, mu @ mu + np.trace(s_a) + np.trace(s_b) - 2 * np.trace(np.real(root))))

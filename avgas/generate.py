"""Images from embeddings: G(z, h), the way Sound2Scene and AV-GAS sample.

Embeddings are L2-normalised before the generator (IC-GAN's instance features are unit vectors);
z ~ N(0, 1) without truncation, as Sound2Scene samples; outputs are clamped to [-1, 1].
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from avgas import models


def noise(n: int, dim_z: int, seed: int) -> torch.Tensor:
    return torch.randn(n, dim_z, generator=torch.Generator().manual_seed(seed))


def sample(G: models.Generator, feats: torch.Tensor, z: torch.Tensor | None = None,
           seed: int = 0, batch: int = 128) -> torch.Tensor:
    """Images (N, 3, R, R) in [-1, 1] from unit features, z ~ N(0, 1) as Sound2Scene samples."""
    G.eval()
    if z is None:
        z = noise(len(feats), G.dim_z, seed)
    out = []
    with torch.no_grad():
        for i in range(0, len(feats), batch):
            out.append(G(z[i:i + batch], None, F.normalize(feats[i:i + batch], dim=1)).clamp(-1, 1))
    return torch.cat(out)



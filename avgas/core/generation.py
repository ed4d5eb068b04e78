"""Images from embeddings: G(z, h), the way Sound2Scene and AV-GAS sample (Sec. 3.3.2, Eq. 4).

Separation gives one image per source, G(z, h_j); Eq. 4 gives one image of the blend,
G(z, lambda h_fg + (1 - lambda) h_bg). Embeddings are L2-normalised before the generator (IC-GAN's
instance features are unit vectors); z ~ N(0, 1) without truncation, as Sound2Scene samples;
outputs are clamped to [-1, 1].
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def noise(n: int, dim_z: int, seed: int) -> torch.Tensor:
    return torch.randn(n, dim_z, generator=torch.Generator().manual_seed(seed))


def to_unit(images_uint8: torch.Tensor) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) in [-1, 1], the generator's range."""
    return images_uint8.permute(0, 3, 1, 2).float() / 127.5 - 1


def from_unit(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) in [-1, 1] -> (N, H, W, 3) uint8."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1)


def sample(G: nn.Module, feats: torch.Tensor, z: torch.Tensor | None = None, seed: int = 0, batch: int = 128):
    """Images (N, 3, R, R) in [-1, 1] from features, G(z, h / |h|), z ~ N(0, 1) drawn on the CPU
    (the same images on any device) unless given."""
    G.eval()
    device = next(G.parameters()).device
    if z is None:
        z = noise(len(feats), G.dim_z, seed)
    out = [torch.empty(0, 3, G.resolution, G.resolution)]  # an empty slice (a torchrun rank's) is fine
    with torch.no_grad():
        for i in range(0, len(feats), batch):
            h = F.normalize(feats[i : i + batch].to(device), dim=1)
            out.append(G(z[i : i + batch].to(device), None, h).clamp(-1, 1).cpu())
    return torch.cat(out)


def unit(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x, dim=1)


def blend(h_fg: torch.Tensor, h_bg: torch.Tensor, lam: float) -> torch.Tensor:
    """Eq. 4's condition: lambda * h_fg + (1 - lambda) * h_bg of unit embeddings, renormalised
    (what G expects)."""
    return unit(lam * unit(h_fg) + (1 - lam) * unit(h_bg))


def mixed_condition(hs: tuple, lam: float) -> torch.Tensor:
    """The condition of the mixed image: Eq. 4's lambda h_fg + (1 - lambda) h_bg for the paper's two
    slots; with K slots (beyond the paper), their equal-weight blend (1/K each), renormalised."""
    if len(hs) == 2:
        return blend(*hs, lam)
    return unit(sum(unit(h) for h in hs) / len(hs))


def images_for(G: nn.Module, embeddings: dict, seed: int, sampler=sample) -> dict:
    """uint8 (N, R, R, 3) images per key (a (task, method) of Tables 1-3). Row i gets the same
    noise z_i under every key, so the methods are compared on the same draws. `sampler(G, h, z)`:
    `sample`, or one that shares the rows out (generate.sample under torchrun)."""
    n = len(next(iter(embeddings.values())))
    z = noise(n, G.dim_z, seed)
    return {key: from_unit(sampler(G, h, z)) for key, h in embeddings.items()}


def lambda_sweep(G: nn.Module, h_fg: torch.Tensor, h_bg: torch.Tensor, lambdas, seed: int) -> torch.Tensor:
    """(len(lambdas), N, R, R, 3) images of Eq. 4, G(z, lambda h_fg + (1 - lambda) h_bg), same z
    throughout."""
    z = noise(len(h_fg), G.dim_z, seed)
    return torch.stack([from_unit(sample(G, blend(h_fg, h_bg, lam), z)) for lam in lambdas])

"""What a judge sees: uint8 images brought to the generator's resolution, then to the judge's
input; and the degradations judges are trained with (a small generator's images are soft)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def degrade(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random blur, noise and contrast on (N, 3, H, W) images in [0, 1]."""
    n = len(x)
    k = torch.randint(0, 3, (1,), generator=gen).item()  # 0: none, 1: 3x3, 2: 5x5 box blur
    if k:
        x = F.avg_pool2d(F.pad(x, (k, k, k, k), mode="replicate"), 2 * k + 1, stride=1)
    c = 0.7 + 0.6 * torch.rand(n, 1, 1, 1, generator=gen)
    mean = x.mean((1, 2, 3), keepdim=True)
    x = (x - mean) * c + mean
    x = x + 0.06 * torch.rand(n, 1, 1, 1, generator=gen) * torch.randn(x.shape, generator=gen)
    return x.clamp(0, 1)


def to_float(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, H, W, 3) or (N, 3, H, W) -> float (N, 3, size, size) in [0, 1] (area resize)."""
    if images.shape[-1] == 3 and images.dim() == 4:
        images = images.permute(0, 3, 1, 2)
    x = images.float() / 255 if images.dtype == torch.uint8 else images
    if x.shape[-1] != size:
        x = F.interpolate(
            x,
            size=size,
            mode="area" if x.shape[-1] > size else "bilinear",
            align_corners=None if x.shape[-1] > size else False,
        )
    return x


def judge_view(images: torch.Tensor, size: int, view: int) -> torch.Tensor:
    """What a judge sees: uint8 (N, H, W, 3) brought to the generator's resolution `size`, then to
    the judge's input `view` — true images take the same path as generated ones."""
    x = to_float(to_float(images, size), view)
    return (x * 255).round().byte().permute(0, 2, 3, 1)

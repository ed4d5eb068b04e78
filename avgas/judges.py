"""The judges of the generated images, and their validation on true scenes.

The paper judges with off-the-shelf models: TorchMetrics' Inception (FID, IS), YOLO-World (CRS)
and CLIP ViT-B/32 (R@K). The synthetic world has none of these, so the project trains small
judges on the world's true images — never on generated ones — and reports each judge's accuracy
on held-out true scenes before it judges anything. Training images are degraded (blur, noise,
contrast) so that the soft images of a small generator are judged on their content, not their
sharpness.

This module holds the scene classifier (the stand-in for Inception: its pooled features serve
FID, its logits IS).
"""
from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm


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
        x = F.interpolate(x, size=size, mode="area" if x.shape[-1] > size else "bilinear",
                          align_corners=None if x.shape[-1] > size else False)
    return x


class SceneClassifier(nn.Module):
    """A small max-pooled CNN: which of the world's classes an image holds (multi-label).
    Global max pooling: a global-average-pooled one never learnt to find small objects."""

    def __init__(self, n_classes: int, size: int = 32, width: int = 32):
        super().__init__()
        self.size = size
        c = [width, 2 * width, 4 * width]
        layers, cin = [], 3
        for co in c:
            layers += [nn.Conv2d(cin, co, 3, 1, 1), nn.BatchNorm2d(co), nn.ReLU(),
                       nn.Conv2d(co, co, 3, 1, 1), nn.BatchNorm2d(co), nn.ReLU(), nn.MaxPool2d(2)]
            cin = co
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(cin, n_classes)
        self.feature_dim = cin

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).amax(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def train_classifier(images: torch.Tensor, labels: torch.Tensor, size: int, steps: int, seed: int,
                     batch: int = 64, progress: bool = True) -> tuple[SceneClassifier, dict]:
    """Train on uint8 images (N, H, W, 3) with multi-hot labels (N, C)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = SceneClassifier(labels.shape[1], size)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3, weight_decay=1e-5)
    x_all = to_float(images, size)
    hist, t0 = {"loss": []}, time.perf_counter()
    for _ in tqdm(range(steps), desc="scene classifier", disable=not progress):
        model.train()
        idx = torch.randint(0, len(x_all), (batch,), generator=gen)
        loss = F.binary_cross_entropy_with_logits(model(degrade(x_all[idx], gen)), labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        hist["loss"].append(loss.item())
    hist["seconds"] = time.perf_counter() - t0
    return model.eval(), hist


@torch.no_grad()
def scores(model: SceneClassifier, images: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """Class scores (logits) of uint8 images."""
    model.eval()
    return torch.cat([model(to_float(images[i:i + batch], model.size)) for i in range(0, len(images), batch)])


def topk_hits(logits: torch.Tensor, wanted: list[set[int]], k: int) -> np.ndarray:
    """Per image: are all wanted class indices among the top k?"""
    top = logits.topk(k, dim=1).indices.tolist()
    return np.array([w <= set(t) for t, w in zip(top, wanted)])


class FeatureExtractor(nn.Module):
    """What TorchMetrics' FID wants from `feature=`: uint8 (N, 3, H, W) -> (N, d) features."""

    def __init__(self, model: SceneClassifier):
        super().__init__()
        self.model = model.eval()
        self.num_features = model.feature_dim

    def forward(self, x):
        return self.model.features(to_float(x, self.model.size))


class LogitsExtractor(nn.Module):
    """What TorchMetrics' Inception Score wants from `feature=`: uint8 images -> (N, C) logits."""

    def __init__(self, model: SceneClassifier):
        super().__init__()
        self.model = model.eval()

    def forward(self, x):
        return self.model(to_float(x, self.model.size))

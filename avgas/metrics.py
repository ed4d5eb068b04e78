"""The paper's metrics on generated images: FID and IS (TorchMetrics), CRS, R@K.

Every metric is computed per combination and summarised as mean and std over the combinations,
as the paper prints them; :func:`bootstrap_ci` adds a 95% interval of that mean.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore


def _nchw(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> uint8 (N, 3, H, W), what TorchMetrics takes."""
    return images.permute(0, 3, 1, 2).contiguous() if images.shape[-1] == 3 else images


def fid(real: torch.Tensor, fake: torch.Tensor, feature, weights_path: str | None = None) -> float:
    """Fréchet distance between the feature statistics of two uint8 image sets. `feature`: a
    module (uint8 images -> features), or 2048 for Inception with its file at `weights_path`."""
    extra = {"feature_extractor_weights_path": weights_path} if weights_path else {}
    m = FrechetInceptionDistance(feature=feature, reset_real_features=True, **extra)
    m.update(_nchw(real), real=True)
    m.update(_nchw(fake), real=False)
    return float(m.compute())


def inception_score(fake: torch.Tensor, feature, splits: int = 1, weights_path: str | None = None) -> float:
    """IS = exp(E KL(p(y|x) || p(y))) of a uint8 image set (one split: the whole set). `feature`:
    a module (uint8 images -> logits), or 'logits_unbiased' for Inception at `weights_path`."""
    if weights_path:  # TorchMetrics' IS takes no weights path: build its Inception ourselves
        feature = inception_net(weights_path, str(feature))
    m = InceptionScore(feature=feature, splits=splits)
    m.update(_nchw(fake))
    return float(m.compute()[0])


def inception_net(weights_path: str, feature: str):
    """TorchMetrics' Inception (torch-fidelity's network) from a local file, giving one `feature`
    ('2048' for FID, 'logits_unbiased' for IS). Nothing is downloaded."""
    from torchmetrics.image.fid import NoTrainInceptionV3
    net = NoTrainInceptionV3(name="inception-v3-compat", features_list=[feature],
                             feature_extractor_weights_path=weights_path)
    if feature.isdigit():
        net.num_features = int(feature)  # what FID reads instead of probing with a dummy batch
    return net


def record(per: dict[str, float], seed: int) -> dict:
    """One metric's entry in a metrics_*.json file: per combination, mean ± std, bootstrap CI."""
    return {"per_combination": per, "mean_std": summary(per), "ci95": bootstrap_ci(per, seed=seed)}


def per_combination(tuples: pd.DataFrame, fn) -> dict[str, float]:
    """fn(row indices of one combination) -> value, for every combination."""
    return {c: fn(idx.to_numpy()) for c, idx in tuples.groupby("combination").groups.items()}


def summary(values: dict[str, float]) -> list[float]:
    """[mean, std] over combinations (population std, as a table of 20 numbers would give)."""
    v = np.array([x for x in values.values() if np.isfinite(x)])
    return [float(v.mean()), float(v.std())] if len(v) else [float("nan"), float("nan")]


def bootstrap_ci(values: dict[str, float], n: int = 2000, seed: int = 0) -> list[float]:
    """95% percentile interval of the mean over combinations (resampling combinations)."""
    v = np.array([x for x in values.values() if np.isfinite(x)])
    if len(v) == 0:
        return [float("nan"), float("nan")]
    rng = np.random.default_rng(seed)
    means = rng.choice(v, size=(n, len(v)), replace=True).mean(axis=1)
    return [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def crs(found: list[set], wanted: list[set]) -> float:
    """Class Recognition Score (paper Eq. 5): the share of images in which the detector finds
    every class it should (both for a mixed image, the one source for a separated image)."""
    return float(np.mean([w <= f for f, w in zip(found, wanted)])) if wanted else float("nan")

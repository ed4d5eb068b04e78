"""The paper's image metrics FID and IS (TorchMetrics), and how every metric is summarised.

Every metric is computed per combination and summarised as mean and std over the combinations,
as the paper prints them; :func:`bootstrap_ci` adds a 95% interval of that mean. CRS (Eq. 5) and
R@K count per image in avgas.core.scores.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pandas as pd
import torch
from torchmetrics.image.fid import FrechetInceptionDistance, NoTrainInceptionV3
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance


@contextlib.contextmanager
def _quiet():
    """TorchMetrics warns on every metric object that it buffers features (what FID/IS/KID must do)
    and, for IS with one split, that a one-sample std is undefined (we report the mean): known,
    harmless, and noise on every page of the book."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*will save all extracted features in buffer.*")
        warnings.filterwarnings("ignore", message=r"std\(\): degrees of freedom is <= 0")
        yield


def _nchw(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> uint8 (N, 3, H, W), what TorchMetrics takes."""
    return images.permute(0, 3, 1, 2).contiguous() if images.shape[-1] == 3 else images


def fid(real: torch.Tensor, fake: torch.Tensor, feature, weights_path: str | None = None) -> float:
    """Fréchet distance between the feature statistics of two uint8 image sets. `feature`: a
    module (uint8 images -> features), or 2048 for Inception with its file at `weights_path`."""
    extra = {"feature_extractor_weights_path": weights_path} if weights_path else {}
    with _quiet():
        m = FrechetInceptionDistance(feature=feature, reset_real_features=True, **extra)
        m.update(_nchw(real), real=True)
        m.update(_nchw(fake), real=False)
        return float(m.compute())


def inception_score(fake: torch.Tensor, feature, splits: int = 1, weights_path: str | None = None) -> float:
    """IS = exp(E KL(p(y|x) || p(y))) of a uint8 image set (one split: the whole set). `feature`:
    a module (uint8 images -> logits), or 'logits_unbiased' for Inception at `weights_path`."""
    if weights_path:  # TorchMetrics' IS takes no weights path: build its Inception ourselves
        feature = inception_net(weights_path, str(feature))
    with _quiet(), _fixed_order():
        m = InceptionScore(feature=feature, splits=splits)
        m.update(_nchw(fake))
        return float(m.compute()[0])


@contextlib.contextmanager
def _fixed_order(seed: int = 0):
    """TorchMetrics draws IS's splits and KID's subsets from torch's global generator, so the same
    images scored twice would give two numbers; a fixed seed, inside a forked generator (the
    caller's random stream is left as it was), makes a score a function of its images."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def kid(real: torch.Tensor, fake: torch.Tensor, feature, subsets: int = 100) -> list[float]:
    """Kernel Inception Distance [mean, std over subsets] of two uint8 image sets (TorchMetrics),
    with subsets as large as the smaller set allows (KID is unbiased at any set size, unlike FID)."""
    with _quiet(), _fixed_order():
        m = KernelInceptionDistance(feature=feature, subsets=subsets, subset_size=min(len(real), len(fake), 1000))
        m.update(_nchw(real), real=True)
        m.update(_nchw(fake), real=False)
        mean, std = m.compute()
    return [float(mean), float(std)]


def pooled(judge, images: dict, truth: dict) -> dict:
    """FID, IS (TorchMetrics' default 10 splits) and KID on all test images of a method, pooled
    over the combinations: 'task/method' -> scores. A method trained with several seeds is scored
    per seed (each seed's set is as large as a seedless method's, since FID and IS depend on the
    set size) and reported as the mean over seeds, with the std. `truth`: task -> the true images
    FID and KID compare with (none for mixed images, as in the paper)."""
    per_seed: dict = {}
    for (task, name), fake in images.items():
        scores = {"IS": judge.inception_score(fake, splits=10)}
        if task in truth:
            scores["FID"] = judge.fid(truth[task], fake)
            scores["KID"] = judge.kid(truth[task], fake)[0]
        per_seed.setdefault((task, name.partition("#")[0]), []).append(scores)
    out = {}
    for (task, method), runs in per_seed.items():
        out[f"{task}/{method}"] = {
            k: [float(np.mean([r[k] for r in runs])), float(np.std([r[k] for r in runs]))] for k in runs[0]
        }
        out[f"{task}/{method}"].update(images=int(len(next(iter(images.values())))), seeds=len(runs))
    return out


def inception_net(weights_path: str, feature: str):
    """TorchMetrics' Inception (torch-fidelity's network) from a local file, giving one `feature`
    ('2048' for FID, 'logits_unbiased' for IS). Nothing is downloaded."""
    net = NoTrainInceptionV3(
        name="inception-v3-compat", features_list=[feature], feature_extractor_weights_path=weights_path
    )
    if feature.isdigit():
        net.num_features = int(feature)  # what FID reads instead of probing with a dummy batch
    return net


def record(per: dict[str, float], seed: int, per_tuple=None) -> dict:
    """One metric's entry in a metrics_*.json file: per combination, mean ± std, bootstrap CI; and,
    for a per-image metric (CRS, R@K), each test tuple's value, for paired comparisons."""
    out = {"per_combination": per, "mean_std": summary(per), "ci95": bootstrap_ci(per, seed=seed)}
    if per_tuple is not None:
        out["per_tuple"] = [float(x) for x in per_tuple]
    return out


def paired_ci(a, b, n: int = 4000, seed: int = 0) -> dict:
    """Mean of (a - b) over paired units (test tuples: the same mixture, the same noise z) and its
    95% percentile bootstrap interval, resampling the units. a, b: per-unit values, or lists of
    them (one per seed), pooled unit by unit over seeds."""
    a, b = np.atleast_2d(np.asarray(a, float)), np.atleast_2d(np.asarray(b, float))
    d = (a - b).mean(axis=0)  # per unit, averaged over seeds
    rng = np.random.default_rng(seed)
    boots = d[rng.integers(0, len(d), size=(n, len(d)))].mean(axis=1)
    low, high = np.percentile(boots, [2.5, 97.5])
    return {
        "difference": float(d.mean()),
        "ci95": [float(low), float(high)],
        "units": int(len(d)),
        "seeds": int(a.shape[0]),
    }


def verdict(ci: dict) -> str:
    """'holds' when the whole 95% interval of (method - baseline) is above 0, 'does not hold'
    when it is below, 'cannot tell' when it holds 0."""
    low, high = ci["ci95"]
    return "holds" if low > 0 else "does not hold" if high < 0 else "cannot tell"


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


# ------------------------------------------- uncertainty over what varies: seeds, then clip clusters


def clip_weights(clusters: list, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, units) bootstrap weights of test tuples that share clips: every clip of the test set is
    drawn with replacement (each replicate draws as many clips as there are), and a tuple weighs
    the product of the draw counts of its clips (Owen's pigeonhole bootstrap for crossed factors:
    a tuple belongs to the cluster of each of its clips, so two tuples sharing a clip move
    together). `clusters`: per tuple, the ids of its clips (its source stems)."""
    ids = {c: j for j, c in enumerate(sorted({c for tup in clusters for c in tup}))}
    member = np.array([[ids[c] for c in tup] for tup in clusters])  # (units, K)
    counts = rng.multinomial(len(ids), np.full(len(ids), 1 / len(ids)), size=n)  # (n, clips)
    return np.prod(counts[:, member], axis=2).astype(float)


def seed_means(values: np.ndarray, picks: np.ndarray) -> np.ndarray:
    """(n, units) per-unit means over the seeds each replicate drew (picks: (n, seeds) indices)."""
    return values[picks].mean(axis=1)


def hierarchical_bootstrap(a, b, clusters: list, n: int = 4000, seed: int = 0) -> dict:
    """The mean difference (a - b) over test tuples and separator seeds, with its bootstrap
    replicates resampled the way the data vary: first the separator seeds (each method's trained
    seeds drawn with replacement; the same draw for both when they have as many seeds, seed k of
    one and of the other sharing the seed), then the test clips as clusters (clip_weights).

    a, b: per-tuple values, or lists of them (one per seed); clusters: per tuple, its clips.
    Returns {'difference', 'replicates' (n values), 'units', 'clips', 'seeds'}."""
    a, b = np.atleast_2d(np.asarray(a, float)), np.atleast_2d(np.asarray(b, float))
    if a.shape[1] != len(clusters) or b.shape[1] != len(clusters):
        raise ValueError(f"{a.shape[1]} and {b.shape[1]} tuples against {len(clusters)} clip clusters")
    rng = np.random.default_rng(seed)
    pa = rng.integers(0, len(a), size=(n, len(a)))
    pb = pa if len(b) == len(a) else rng.integers(0, len(b), size=(n, len(b)))
    d = seed_means(a, pa) - seed_means(b, pb)  # (n, units)
    w = clip_weights(clusters, n, rng)
    total = w.sum(axis=1)
    reps = np.where(total > 0, (w * d).sum(axis=1) / np.where(total > 0, total, 1), np.nan)
    return {
        "difference": float(a.mean() - b.mean()),
        "replicates": reps[np.isfinite(reps)],
        "units": int(a.shape[1]),
        "clips": len({c for tup in clusters for c in tup}),
        "seeds": [int(len(a)), int(len(b))],
    }


def interval(replicates: np.ndarray, alpha: float = 0.05) -> list[float]:
    """The percentile 1 - alpha interval of bootstrap replicates."""
    low, high = np.percentile(replicates, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return [float(low), float(high)]


def p_beyond(replicates: np.ndarray, margin: float) -> float:
    """Two-sided bootstrap p-value against 'the difference lies within ±margin': twice the smaller
    share of replicates at or below +margin (against 'it holds') or at or above -margin (against
    'it does not hold'), with the +1 of a finite bootstrap. p < alpha exactly when the
    1 - alpha percentile interval clears the margin on one side."""
    r = np.asarray(replicates)
    n = len(r)
    below, above = (np.sum(r <= margin) + 1) / (n + 1), (np.sum(r >= -margin) + 1) / (n + 1)
    return float(min(1.0, 2 * min(below, above)))


def holm(pvalues: list[float], alpha: float = 0.05) -> list[dict]:
    """Holm's step-down correction of a family of tests: per test, its adjusted p-value, the level
    its step tests at (alpha / (m - rank)), and whether it is rejected. Equivalent to: sort the
    p-values, reject while p_(j) <= alpha / (m - j), stop at the first that is not."""
    m = len(pvalues)
    order = np.argsort(pvalues, kind="stable")
    out: list[dict] = [{} for _ in range(m)]
    running, stopped = 0.0, False
    for rank, i in enumerate(order):
        level = alpha / (m - rank)
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        stopped = stopped or pvalues[i] > level
        out[i] = {"adjusted p": float(running), "level": float(level), "rejected": not stopped, "of": m}
    return out

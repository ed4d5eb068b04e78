"""The FID/IS judge. The synthetic world's scene classifier (its pooled features serve FID, its
logits IS; the stand-in for Inception), trained on the judge pool's true images; the real run's
Inception from a local file. Both behind FidIsJudge."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from avgas import checkpoints, instrument, metrics, paths, protocol
from avgas.core.scores import topk_hits
from avgas.judges.base import Judge
from avgas.judges.checks import both_ways, ranked_success
from avgas.judges.images import degrade, to_float
from avgas.paths import torch_save_atomic as _save
from avgas.progress import tqdm


class SceneClassifier(nn.Module):
    """A small max-pooled CNN: which of the world's classes an image holds (multi-label).
    Global max pooling: a global-average-pooled one never learnt to find small objects."""

    def __init__(self, n_classes: int, size: int = 32, width: int = 32):
        super().__init__()
        self.size = size
        c = [width, 2 * width, 4 * width]
        layers, cin = [], 3
        for co in c:
            layers += [
                nn.Conv2d(cin, co, 3, 1, 1),
                nn.BatchNorm2d(co),
                nn.ReLU(),
                nn.Conv2d(co, co, 3, 1, 1),
                nn.BatchNorm2d(co),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
            cin = co
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(cin, n_classes)
        self.feature_dim = cin

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).amax(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def train_classifier(
    images: torch.Tensor, labels: torch.Tensor, size: int, steps: int, seed: int, batch: int = 64, progress: bool = True
) -> tuple[SceneClassifier, dict]:
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
    return torch.cat([model(to_float(images[i : i + batch], model.size)) for i in range(0, len(images), batch)])


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


@dataclass
class FidIsJudge(Judge):
    """What FID and IS are computed with: the synthetic world's classifier (features / logits
    modules), or, for the real run, TorchMetrics' Inception from a local weights file."""

    fid_feature: nn.Module = field(repr=False, default=None)
    is_feature: nn.Module = field(repr=False, default=None)

    def fid(self, real: torch.Tensor, fake: torch.Tensor) -> float:
        return metrics.fid(real, fake, self.fid_feature)

    def inception_score(self, fake: torch.Tensor, splits: int = 1) -> float:
        return metrics.inception_score(fake, self.is_feature, splits=splits)

    def kid(self, real: torch.Tensor, fake: torch.Tensor) -> list[float]:
        return metrics.kid(real, fake, self.fid_feature)

    def score(self, fake: torch.Tensor, real: torch.Tensor | None = None) -> dict:
        """A set's scores: IS, and FID against `real` when given (the paper gives mixed images none)."""
        out = {"IS": self.inception_score(fake)}
        if real is not None:
            out["FID"] = self.fid(real, fake)
        return out


def judge(p, cat, size: int, progress: bool = True) -> FidIsJudge:
    """The run's FID/IS judge, both worlds: the scene classifier trained here (synthetic) or
    TorchMetrics' Inception from `inception_weights` (real). The one entry to this judge."""
    if p.world == "synthetic":
        model, rep = _trained_classifier(p, cat, size, progress)
        return FidIsJudge(
            name="scene classifier (FID/IS)",
            report=rep,
            size=size,
            settings=classifier_settings(p, size),
            fid_feature=FeatureExtractor(model),
            is_feature=LogitsExtractor(model),
        )

    path = checkpoints.inception_weights(p)  # checked here: a bad file is named before any work
    # built once per run (TorchMetrics would rebuild them for every metric object)
    return FidIsJudge(
        name="Inception (FID/IS)",
        report={"validation": {}, "weights": path},
        size=size,
        settings={"weights": str(path)},
        fid_feature=metrics.inception_net(path, "2048"),
        is_feature=metrics.inception_net(path, "logits_unbiased"),
    )


def validate_classifier(model: SceneClassifier, images, sets) -> dict:
    """On held-out true images: top-1 accuracy on single-class images, and the share of two-class
    scenes whose two classes are the top 2."""
    logits = scores(model, images)
    single = np.array([len(s) == 1 for s in sets])
    hits1 = topk_hits(logits, sets, 1)
    hits2 = topk_hits(logits, sets, 2)
    return {
        "single-class top-1": float(hits1[single].mean()),
        "two-class scenes: both in top 2": float(hits2[~single].mean()),
        "images": int(len(sets)),
    }


def classifier_settings(p, size: int) -> dict:
    """What this judge is a function of (its instrument-store key, avgas.instrument): its pool and
    its own settings, never a separator setting. `size`: the generator's image size it judges."""
    return {
        **protocol.judge_pool_settings(p),  # the pool it learns from and is checked on
        "steps": p.classifier_steps,
        "size": size,
    }


def _trained_classifier(p, cat, size: int, progress: bool = True) -> tuple[SceneClassifier, dict]:
    """Train the scene classifier on the judge pool's true images (unless saved with the same
    settings), validate it on the pool's validation images, measure it both ways on the pool's
    held-out test images; save both in checkpoints/judges/."""
    folder = p.folder.judges
    f = folder / "scene_classifier.pt"
    settings = classifier_settings(p, size)
    stored = instrument.entry(
        p,
        "scene_classifier",
        settings,
        {"scene_classifier.pt": f, "scene_classifier.json": folder / "scene_classifier.json"},
    )

    def own():
        ck = torch.load(f, weights_only=False)
        return ck["report"] if ck.get("settings") == settings else None

    if instrument.fetch_or_adopt(stored, own) is not None:  # built before (avgas.instrument)
        ck = torch.load(f, weights_only=False)
        model = SceneClassifier(len(ck["classes"]), ck["size"])
        model.load_state_dict(ck["model"])
        return model.eval(), ck["report"]
    pool = protocol.judge_pool(p, "train")
    images, classes = pool.images, pool.classes
    model, hist = train_classifier(images, pool.labels, size, p.classifier_steps, p.instrument_draw, progress=progress)

    def check(part):
        held = protocol.judge_pool(p, part)
        success = ranked_success(scores(model, held.images), classes, {c: c for c in classes})
        return both_ways(held, protocol.evaluated_pairs(p), success)

    report = {
        "validation": check("val"),
        "held-out": check("test"),
        "seconds": round(hist["seconds"], 1),
        "train_images": len(images),
        "history": hist["loss"],
    }
    folder.mkdir(parents=True, exist_ok=True)

    _save({"model": model.state_dict(), "classes": classes, "size": size, "settings": settings, "report": report}, f)
    paths.atomic_write_text(folder / "scene_classifier.json", json.dumps(report["held-out"], indent=1))
    instrument.publish(stored, report, hist["seconds"])
    return model, report

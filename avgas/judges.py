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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from avgas import data, paths
from avgas.progress import tqdm


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


def topk_hits(logits: torch.Tensor, wanted: list[set[int]], k: int) -> np.ndarray:
    """Per image: are all wanted class indices among the top k?"""
    top = logits.topk(k, dim=1).indices.tolist()
    return np.array([w <= set(t) for t, w in zip(top, wanted)])


# -------------------------------------------------------------- judges checked both ways

TRUST_RECALL, TRUST_FALSE = 0.9, 0.05  # a judge is trusted at recall >= 0.9 and false success <= 0.05


def both_ways(pool, pairs: list[tuple[str, str]], success) -> dict:
    """A judge measured on true images it never trained on, both ways:

    - recall: a true two-class scene of a pair is a success (both classes found / in the top 2),
      and a true single-class image's class is found / top 1;
    - false success: a true image showing only ONE class of an evaluated pair is scored as showing
      both (a CRS or R@2* success it did not earn: what would inflate Table 1).

    `success(i, classes)` says whether image i of `pool` is scored as showing every class of the
    set `classes` (class names)."""
    names = pool.classes
    scenes = [i for i, s in enumerate(pool.sets) if len(s) == 2]
    singles = [i for i, s in enumerate(pool.sets) if len(s) == 1]
    r2 = [success(i, {names[c] for c in pool.sets[i]}) for i in scenes]
    r1 = [success(i, {names[next(iter(pool.sets[i]))]}) for i in singles]
    false = []
    for i in singles:
        c = names[next(iter(pool.sets[i]))]
        false += [success(i, {fg, bg}) for fg, bg in pairs if c in (fg, bg)]
    mean = lambda v: float(np.mean(v)) if v else float("nan")  # noqa: E731
    return {
        "recall: two-class scenes (both classes)": mean(r2),
        "recall: single-class images": mean(r1),
        "false success: one class of a pair scored as both": mean(false),
        "images": len(pool.sets),
        "one-class (image, pair) cases": len(false),
    }


def trusted(check: dict) -> bool:
    """Recall >= 0.9 on both kinds of true image and false success <= 0.05 (NaN: not measured)."""
    recalls = [v for k, v in check.items() if k.startswith("recall") and np.isfinite(v)]
    false = [v for k, v in check.items() if k.startswith("false") and np.isfinite(v)]
    return bool(recalls) and min(recalls) >= TRUST_RECALL and all(f <= TRUST_FALSE for f in false)


def ranked_success(sim: torch.Tensor, words: list[str], word_of: dict):
    """success(i, classes) for a ranking judge (CLIP, the classifier): every class's word among
    the top len(classes) of image i (R@1 for one class, R@2* for a pair)."""
    top = sim.topk(2, dim=1).indices.tolist()

    def success(i, classes):
        want = {word_of[c] for c in classes}
        return want <= {words[j] for j in top[i][: len(want)]}

    return success


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
class FidIsJudge:
    """What FID and IS are computed with: the synthetic world's classifier (features / logits
    modules), or, for the real run, TorchMetrics' Inception from a local weights file."""

    fid_feature: nn.Module
    is_feature: nn.Module
    report: dict

    def fid(self, real: torch.Tensor, fake: torch.Tensor) -> float:
        from avgas import metrics

        return metrics.fid(real, fake, self.fid_feature)

    def inception_score(self, fake: torch.Tensor, splits: int = 1) -> float:
        from avgas import metrics

        return metrics.inception_score(fake, self.is_feature, splits=splits)

    def kid(self, real: torch.Tensor, fake: torch.Tensor) -> list[float]:
        from avgas import metrics

        return metrics.kid(real, fake, self.fid_feature)


def fid_is_judge(p, cat, size: int, progress: bool = True) -> FidIsJudge:
    if p.world == "synthetic":
        model, rep = ensure_classifier(p, cat, size, progress)
        return FidIsJudge(FeatureExtractor(model), LogitsExtractor(model), rep)
    from avgas import checkpoints, metrics

    path = checkpoints.inception_weights(p)  # checked here: a bad file is named before any work
    # built once per run (TorchMetrics would rebuild them for every metric object)
    return FidIsJudge(
        metrics.inception_net(path, "2048"),
        metrics.inception_net(path, "logits_unbiased"),
        {"validation": {}, "weights": path},
    )


# ------------------------------------------------------------------ the synthetic world's judges


def _world_stamp(p) -> str:
    """What generated the run's world: a judge trained on another world is retrained."""
    return (p.data_dir / "world.json").read_text()


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


def ensure_classifier(p, cat, size: int, progress: bool = True) -> tuple[SceneClassifier, dict]:
    """Train the scene classifier on the judge pool's true images (unless saved with the same
    settings), validate it on the pool's validation images, measure it both ways on the pool's
    held-out test images; save both in checkpoints/judges/."""
    import json

    from avgas import protocol

    folder = p.checkpoint_dir / "judges"
    f = folder / "scene_classifier.pt"
    settings = {
        "seed": p.seed,
        "steps": p.classifier_steps,
        "size": size,
        "pool": JUDGE_POOL_VERSION,
        "scenes": p.scenes_per_combination,
        "world": _world_stamp(p),
    }
    if f.is_file():
        ck = torch.load(f, weights_only=False)
        if ck["settings"] == settings:
            model = SceneClassifier(len(ck["classes"]), ck["size"])
            model.load_state_dict(ck["model"])
            return model.eval(), ck["report"]
    pool = protocol.judge_pool(p, "train")
    images, classes = pool.images, pool.classes
    model, hist = train_classifier(images, pool.labels, size, p.classifier_steps, p.seed, progress=progress)

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
    from avgas.paths import torch_save_atomic as _save

    _save({"model": model.state_dict(), "classes": classes, "size": size, "settings": settings, "report": report}, f)
    paths.atomic_write_text(folder / "scene_classifier.json", json.dumps(report["held-out"], indent=1))
    return model, report


JUDGE_POOL_VERSION = 2  # bump when the judge pool's recipe changes (protocol.judge_pool)


# ---------------------------------------------------------------------- the detector (CRS judge)


def _ultralytics(config_dir):
    """Import Ultralytics offline: YOLO_OFFLINE stops its network probes, and a font file in its
    config folder stops it fetching Arial.ttf (any TTF will do: matplotlib's DejaVuSans)."""
    import os
    import shutil
    from pathlib import Path

    import matplotlib

    config_dir = Path(config_dir)
    font = config_dir / "Ultralytics" / "Arial.ttf"
    if not font.is_file():
        font.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf", font)
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_CONFIG_DIR", str(config_dir))
    import ultralytics

    return ultralytics


def vocabulary(p) -> list[str]:
    """The detector's and CLIP's candidate labels: the Table 5 prompts of the run's classes."""
    from avgas import paper, world

    prompts = paper.prompts()
    return sorted({prompts[c] for c in world.classes(p)})


def judge_view(images: torch.Tensor, size: int, view: int) -> torch.Tensor:
    """What a judge sees: uint8 (N, H, W, 3) brought to the generator's resolution `size`, then to
    the judge's input `view` — true images take the same path as generated ones."""
    x = to_float(to_float(images, size), view)
    return (x * 255).round().byte().permute(0, 2, 3, 1)


def _write_yolo_set(folder, images, boxes_per_image, names, gen):
    """Ultralytics layout: images/*.png and labels/*.txt (class cx cy w h, normalised)."""
    from PIL import Image

    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "labels").mkdir(parents=True, exist_ok=True)
    for i, (img, boxes) in enumerate(zip(images, boxes_per_image)):
        x = to_float(img[None], img.shape[0])
        if torch.rand(1, generator=gen).item() < 0.5:  # half the images soft, like a small G's
            x = degrade(x, gen)
        Image.fromarray((x[0] * 255).round().byte().permute(1, 2, 0).numpy()).save(folder / "images" / f"{i:05d}.png")
        lines = [
            f"{names.index(n)} {(x0 + x1) / 2:.4f} {(y0 + y1) / 2:.4f} {x1 - x0:.4f} {y1 - y0:.4f}"
            for n, (x0, y0, x1, y1) in boxes
        ]
        (folder / "labels" / f"{i:05d}.txt").write_text("\n".join(lines) + "\n")


def detector_scenes(pool):
    """A judge pool as the detector's data: images, and boxes labelled with Table 5's prompts."""
    from avgas import paper

    prompts = paper.prompts()
    return pool.images, [[(prompts[c], box) for c, box in b] for b in pool.boxes]


def ultralytics_device(p) -> str:
    """Ultralytics spells devices its own way: '0' for the first GPU, 'cpu'."""
    return "0" if p.torch_device.type == "cuda" else "cpu"


def detect_scores(
    model, images: torch.Tensor, view: int, batch: int = 64, device: str = "cpu", floor: float = 0.01
) -> list[dict]:
    """Per uint8 image: each vocabulary word found, with its highest box confidence (>= floor)."""
    out = []
    for i in range(0, len(images), batch):
        chunk = [im.numpy()[:, :, ::-1].copy() for im in images[i : i + batch]]  # Ultralytics takes BGR arrays
        for r in model.predict(chunk, imgsz=view, conf=floor, verbose=False, device=device):
            best: dict = {}
            for c, s in zip(r.boxes.cls.tolist(), r.boxes.conf.tolist()):
                w = r.names[int(c)]
                best[w] = max(best.get(w, 0.0), float(s))
            out.append(best)
    return out


def detect(
    model, images: torch.Tensor, names: list[str], conf: float, view: int, batch: int = 64, device: str = "cpu"
) -> list[set]:
    """The set of vocabulary words found (confidence >= conf) in each uint8 image."""
    return [
        {w for w, s in found.items() if s >= conf}
        for found in detect_scores(model, images, view, batch, device, floor=min(conf, 0.01) or 1e-4)
    ]


def choose_conf(found: list[dict], pool, pairs, grid=None) -> tuple[float, dict]:
    """The detector's confidence threshold, chosen on validation images: the lowest (most
    recall) whose false-success rate is at most 0.05; if none is, the one with the fewest false
    successes. Returns (threshold, its both-ways check)."""
    from avgas import paper

    prompts = paper.prompts()
    grid = grid or [round(x, 2) for x in np.arange(0.05, 0.96, 0.05)]
    checks = {}
    for t in grid:
        sets = [{w for w, s in f.items() if s >= t} for f in found]
        checks[t] = both_ways(pool, pairs, lambda i, classes: {prompts[c] for c in classes} <= sets[i])
    ok = [t for t in grid if checks[t]["false success: one class of a pair scored as both"] <= TRUST_FALSE]
    t = ok[0] if ok else min(grid, key=lambda t: (checks[t]["false success: one class of a pair scored as both"], -t))
    return t, checks[t]


def ensure_detector(p, cat, size: int, progress: bool = True):
    """Train an Ultralytics YOLOv8n from its yaml (no weights) on the judge pool's true images with
    known boxes, unless one with the same settings is saved; choose its confidence threshold on
    the pool's validation images (seen through the generator's resolution), and measure it both
    ways on the pool's held-out test images. Returns (YOLO model, report); report['conf'] is the
    threshold CRS uses."""
    import json
    import shutil
    import time as _time

    from avgas import protocol

    ul = _ultralytics(p.cache_dir / "ultralytics")
    folder = p.checkpoint_dir / "judges"
    weights = folder / "detector.pt"
    names = vocabulary(p)
    view = p.detector_imgsz
    settings = {
        "seed": p.seed,
        "epochs": p.detector_epochs,
        "size": size,
        "view": view,
        "names": names,
        "scenes": p.scenes_per_combination,
        "pool": JUDGE_POOL_VERSION,
        "conf": p.detector_conf,
        "world": _world_stamp(p),
    }
    meta = folder / "detector.json"
    if weights.is_file() and meta.is_file() and json.loads(meta.read_text()).get("settings") == settings:
        return ul.YOLO(str(weights)), json.loads(meta.read_text())["report"]
    work = p.cache_dir / "detector_data"
    shutil.rmtree(work, ignore_errors=True)
    gen = torch.Generator().manual_seed(p.seed)
    pools = {part: protocol.judge_pool(p, part) for part in ("train", "val", "test")}
    for part in ("train", "val"):  # Ultralytics' own val set: its training curves only, nothing chosen
        imgs, boxes = detector_scenes(pools[part])
        _write_yolo_set(work / part, judge_view(imgs, size, view), boxes, names, gen)
    (work / "data.yaml").write_text(
        f"path: {work}\ntrain: train/images\nval: val/images\nnames:\n"
        + "".join(f"  {i}: {n}\n" for i, n in enumerate(names))
    )
    model = ul.YOLO("yolov8n.yaml")
    bar = tqdm(total=p.detector_epochs, desc="detector (YOLOv8n)", unit="epoch", disable=not progress)
    model.add_callback("on_train_epoch_end", lambda trainer: bar.update(1))
    t0 = _time.perf_counter()
    model.train(
        data=str(work / "data.yaml"),
        epochs=p.detector_epochs,
        imgsz=view,
        batch=32,
        device=ultralytics_device(p),
        workers=0,
        amp=False,
        plots=False,
        project=str(work / "runs"),
        name="detector",
        exist_ok=True,
        verbose=False,
        pretrained=False,
        seed=p.seed,
        deterministic=True,
        fliplr=0.0,
        mosaic=0.0,
    )
    seconds = _time.perf_counter() - t0
    bar.close()
    folder.mkdir(parents=True, exist_ok=True)
    paths.atomic_write_bytes(weights, Path(model.trainer.best).read_bytes())
    model = ul.YOLO(str(weights))
    pairs = protocol.evaluated_pairs(p)

    def found(part):
        return detect_scores(model, judge_view(pools[part].images, size, view), view, device=ultralytics_device(p))

    if p.detector_conf is None:
        conf, validation = choose_conf(found("val"), pools["val"], pairs)
    else:
        conf, validation = choose_conf(found("val"), pools["val"], pairs, grid=[p.detector_conf])
    _, held_out = choose_conf(found("test"), pools["test"], pairs, grid=[conf])
    report = {
        "conf": conf,
        "validation": validation,
        "held-out": held_out,
        "seconds": round(seconds, 1),
        "vocabulary": names,
    }
    paths.atomic_write_text(meta, json.dumps({"settings": settings, "report": report}, indent=1))
    return model, report


# ------------------------------------------------------------------------------ CLIP (R@K judge)

CLIP_CONFIG = "avgas-clip-tiny"  # avgas/resources/avgas-clip-tiny.json: a 64-px ViT, 2-layer text tower


def prompt_text(word: str) -> str:
    return f"a photo of a {word}"


def _open_clip():
    import open_clip

    from avgas.paths import PACKAGE_DIR

    if CLIP_CONFIG not in open_clip.list_models():
        open_clip.add_model_config(PACKAGE_DIR / "resources" / f"{CLIP_CONFIG}.json")
    return open_clip


def clip_similarity(model, tokenizer, images: torch.Tensor, words: list[str], batch: int = 256) -> torch.Tensor:
    """(N, len(words)) cosine similarities between uint8 images and the words' prompts."""
    model.eval()
    size = model.visual.image_size[0] if isinstance(model.visual.image_size, tuple) else model.visual.image_size
    mean = torch.tensor(model.visual.image_mean or (0.48145466, 0.4578275, 0.40821073)).view(1, 3, 1, 1)
    std = torch.tensor(model.visual.image_std or (0.26862954, 0.26130258, 0.27577711)).view(1, 3, 1, 1)
    with torch.no_grad():
        t = F.normalize(model.encode_text(tokenizer([prompt_text(w) for w in words])), dim=-1)
        out = []
        for i in range(0, len(images), batch):
            x = (to_float(images[i : i + batch], size) - mean) / std
            out.append(F.normalize(model.encode_image(x), dim=-1) @ t.T)
    return torch.cat(out)


def recall_at_k(sim: torch.Tensor, words: list[str], wanted: list[set], k: int) -> np.ndarray:
    """Per image: are all wanted words among the k most similar prompts? (R@2* for mixed images
    with k = 2 and both classes wanted; R@1 for separated images)."""
    idx = {w: i for i, w in enumerate(words)}
    return topk_hits(sim, [{idx[w] for w in ws} for ws in wanted], k)


def ensure_clip(p, cat, size: int, progress: bool = True):
    """Train a small OpenCLIP model (custom config, no pretrained weights) on the world's true
    images and their prompts, unless one with the same settings is saved; validate R@1 on
    held-out single images and R@2* on held-out two-class scenes. Returns (model, tokenizer, report)."""
    import json

    oc = _open_clip()
    folder = p.checkpoint_dir / "judges"
    f = folder / "clip.pt"
    words = vocabulary(p)
    settings = {
        "seed": p.seed,
        "steps": p.clip_steps,
        "size": size,
        "words": words,
        "pool": JUDGE_POOL_VERSION,
        "scenes": p.scenes_per_combination,
        "world": _world_stamp(p),
    }
    tokenizer = oc.get_tokenizer(CLIP_CONFIG)
    torch.manual_seed(p.seed)
    model = oc.create_model(CLIP_CONFIG, pretrained=None)
    if f.is_file():
        ck = torch.load(f, weights_only=False)
        if ck["settings"] == settings:
            model.load_state_dict(ck["state_dict"])
            return model.eval(), tokenizer, ck["report"]
    from avgas import paper

    prompts = paper.prompts()
    from avgas import protocol

    pool = protocol.judge_pool(p, "train")
    images, sets, classes = pool.images, pool.sets, pool.classes
    w_idx = {w: i for i, w in enumerate(words)}
    target = torch.zeros(len(sets), len(words))
    for i, s in enumerate(sets):  # a scene's probability split between its two words
        ws = {w_idx[prompts[classes[c]]] for c in s}
        target[i, list(ws)] = 1 / len(ws)
    x_all = to_float(judge_view(images, size, model.visual.image_size[0]), model.visual.image_size[0])
    mean = torch.tensor(model.visual.image_mean).view(1, 3, 1, 1)
    std = torch.tensor(model.visual.image_std).view(1, 3, 1, 1)
    tokens = tokenizer([prompt_text(w) for w in words])
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.05)
    gen = torch.Generator().manual_seed(p.seed)
    t0, hist = time.perf_counter(), []
    for _ in tqdm(range(p.clip_steps), desc="CLIP judge", disable=not progress):
        model.train()
        idx = torch.randint(0, len(x_all), (64,), generator=gen)
        img = F.normalize(model.encode_image((degrade(x_all[idx], gen) - mean) / std), dim=-1)
        txt = F.normalize(model.encode_text(tokens), dim=-1)
        logits = model.logit_scale.exp() * img @ txt.T
        loss = -(target[idx] * F.log_softmax(logits, dim=1)).sum(1).mean()  # image -> prompt
        opt.zero_grad()
        loss.backward()
        opt.step()
        hist.append(loss.item())
    seconds = time.perf_counter() - t0
    word_of = {c: prompts[c] for c in classes}

    def check(part):
        held = protocol.judge_pool(p, part)
        sim = clip_similarity(model, tokenizer, judge_view(held.images, size, model.visual.image_size[0]), words)
        return both_ways(held, protocol.evaluated_pairs(p), ranked_success(sim, words, word_of))

    report = {"validation": check("val"), "held-out": check("test"), "seconds": round(seconds, 1), "history": hist}
    folder.mkdir(parents=True, exist_ok=True)
    from avgas.paths import torch_save_atomic as _save

    _save({"state_dict": model.state_dict(), "config": CLIP_CONFIG, "settings": settings, "report": report}, f)
    paths.atomic_write_text(folder / "clip.json", json.dumps(report["held-out"], indent=1))
    return model.eval(), tokenizer, report


# ------------------------------------------------------------- the real run's judge files


def load_ultralytics_file(path, config_dir=None):
    """An Ultralytics weights file (YOLO-World for the real run), or a CheckpointError naming it."""
    from pathlib import Path

    from avgas import checkpoints

    path = Path(path)
    where = checkpoints._where("detector_weights")
    if not path.is_file():
        raise checkpoints.CheckpointError(f"{path}: file not found {where}")
    if (
        path.suffix != ".pt"
    ):  # Ultralytics picks its loader by suffix: anything else is read as a model yaml or an export
        raise checkpoints.CheckpointError(
            f"{path}: an Ultralytics weights file ends in .pt (this one: "
            f"'{path.suffix}'); point the key at the .pt file {where}"
        )
    if path.stat().st_size == 0:
        raise checkpoints.CheckpointError(
            f"{path}: the file is empty (0 bytes: an interrupted download or copy?) {where}"
        )
    ul = _ultralytics(config_dir or Path.home() / ".cache" / "avgas-ultralytics")
    try:
        return ul.YOLO(str(path))
    except Exception as e:  # not an Ultralytics checkpoint
        raise checkpoints.CheckpointError(
            f"{path}: not an Ultralytics weights file ({checkpoints.first_line(e)}) {where}"
        ) from None


def detector_file_info(path) -> str:
    """Check an Ultralytics weights file loads; describe it."""
    model = load_ultralytics_file(path)
    return f"{type(model.model).__name__}, task {model.task}, {len(model.names)} class names"


def clip_architecture(arch: str) -> str:
    """An OpenCLIP model name; a model-config .json is registered under its file stem first."""
    oc = _open_clip()
    if arch.endswith(".json"):
        from avgas.paths import resolve

        path = resolve(arch)
        if path.stem not in oc.list_models():
            oc.add_model_config(path)
        return path.stem
    return arch


def load_clip_file(path, arch: str = "ViT-B-32"):
    """An OpenCLIP model of architecture `arch` with the weights of `path` (open_clip_pytorch_model.bin
    or .safetensors), its keys and shapes checked against the architecture first.
    Returns (model, tokenizer, architecture name)."""
    from pathlib import Path

    from avgas import checkpoints

    path = Path(path)
    key = "clip_checkpoint"
    if path.suffix == ".safetensors":
        if not path.is_file():
            raise checkpoints.CheckpointError(f"{path}: file not found {checkpoints._where(key)}")
        from safetensors.torch import load_file

        try:
            state = load_file(str(path))
        except Exception as e:  # noqa: BLE001 - empty, truncated or not safetensors
            raise checkpoints.CheckpointError(
                f"{path}: not a readable safetensors file ({checkpoints.first_line(e)}) {checkpoints._where(key)}"
            ) from None
    else:
        state = checkpoints._unwrap(checkpoints._load(path, key), path, key)
    state = {k.removeprefix("module."): v for k, v in state.items()}
    name = clip_architecture(arch)
    oc = _open_clip()
    model = oc.create_model(name, pretrained=None)
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = [k for k in want if k not in state]
    wrong = [
        f"{k}: {tuple(state[k].shape)} (expected {want[k]})"
        for k in want
        if k in state and tuple(state[k].shape) != want[k]
    ]
    if missing or wrong:
        raise checkpoints.CheckpointError(
            f"{path}: not OpenCLIP {name} ({len(missing)} missing keys, e.g. {missing[:2]}; wrong shapes: "
            f"{wrong[:2]}) (params key 'clip_model' names the architecture) {checkpoints._where(key)}"
        )
    model.load_state_dict({k: state[k] for k in want})
    return model.eval(), oc.get_tokenizer(name), name


def clip_file_info(path, arch: str = "ViT-B-32") -> str:
    """Check an OpenCLIP file against its architecture before the run relies on it; describe it."""
    model, _, name = load_clip_file(path, arch)
    return f"OpenCLIP {name}, {sum(v.numel() for v in model.parameters()) / 1e6:.0f} M parameters"


def load_real_clip(p):
    """OpenCLIP (ViT-B-32 for the paper) from the local file of `clip_checkpoint`. (model, tokenizer)"""
    model, tokenizer, _ = load_clip_file(p.weight_path("clip_checkpoint"), p.clip_model)
    return model, tokenizer


def load_real_detector(p, clip, tokenizer, words: list[str]):
    """YOLO-World from the local `detector_weights`, its vocabulary set to the prompts of Table 5.

    `set_classes` would fetch OpenAI's CLIP package and weights; instead the prompt embeddings are
    computed with the local CLIP text tower and written where YOLO-World reads them."""
    from avgas import checkpoints

    path = p.weight_path("detector_weights")
    model = load_ultralytics_file(path, p.cache_dir / "ultralytics")
    if not hasattr(model.model, "txt_feats"):
        raise checkpoints.CheckpointError(
            f"{path}: an Ultralytics model, but not YOLO-World (no text "
            f"embeddings) {checkpoints._where('detector_weights')}"
        )
    with torch.no_grad():
        txt = F.normalize(clip.encode_text(tokenizer(list(words))).float(), dim=-1)
    model.model.txt_feats = txt[None]
    model.model.model[-1].nc = len(words)
    model.model.names = dict(enumerate(words))
    return model


def _validate_on_true_singles(p, cat, size: int, judge) -> dict:
    """The real run's judges on true single-class images of the run's *validation* clips (VGGSound
    has no two-class images with known classes, so only this recall can be measured; the false
    success rate is reported as not measured)."""
    val = cat[cat["split"] == "val"].groupby("label").head(10)
    from avgas import paper

    prompts = paper.prompts()
    images = data.load_images(cat, val["stem"], size)
    wanted = [{prompts[lab]} for lab in val["label"]]
    hits = judge(images, wanted)
    return {
        "recall: single-class images": float(np.mean(hits)),
        "false success: one class of a pair scored as both": float("nan"),
        "images": len(wanted),
    }


REAL_DETECTOR_CONF = 0.25  # YOLO-World's default, what the paper's CRS uses unless detector_conf is set


def detector_for(p, cat, size: int, progress: bool = True, clip: tuple | None = None):
    """The CRS judge of this run: the trained stand-in (synthetic) or YOLO-World (real), whose
    prompts are embedded by the run's CLIP (`clip`: a loaded (model, tokenizer), else loaded here).
    Returns (model, report); report['conf'] is the confidence threshold CRS uses."""
    if p.world == "synthetic":
        return ensure_detector(p, cat, size, progress)
    clip, tok = clip or load_real_clip(p)
    names = vocabulary(p)
    model = load_real_detector(p, clip, tok, names)
    conf = REAL_DETECTOR_CONF if p.detector_conf is None else p.detector_conf

    def judge(images, wanted):
        found = detect(
            model,
            judge_view(images, size, p.detector_imgsz),
            names,
            conf,
            p.detector_imgsz,
            device=ultralytics_device(p),
        )
        return [w <= f for w, f in zip(wanted, found)]

    return model, {
        "conf": conf,
        "validation": {},
        "held-out": _validate_on_true_singles(p, cat, size, judge),
        "vocabulary": names,
    }


def clip_for(p, cat, size: int, progress: bool = True):
    """The R@K judge of this run: the trained small OpenCLIP (synthetic) or ViT-B-32 (real)."""
    if p.world == "synthetic":
        return ensure_clip(p, cat, size, progress)
    model, tok = load_real_clip(p)
    words = vocabulary(p)

    def judge(images, wanted):
        view = model.visual.image_size[0]
        sim = clip_similarity(model, tok, judge_view(images, size, view), words)
        return list(recall_at_k(sim, words, wanted, 1))

    return model, tok, {"validation": {}, "held-out": _validate_on_true_singles(p, cat, size, judge)}


def wanted(tuples) -> dict[str, list[set]]:
    """Per task, the prompt words each image of the tuples must show: both classes for a mixed
    image, its own class for a separated one (Table 5's prompts)."""
    from avgas import paper

    prompts = paper.prompts()
    fg, bg = [prompts[a] for a in tuples["fg_label"]], [prompts[b] for b in tuples["bg_label"]]
    return {
        "mixed": [{a, b} for a, b in zip(fg, bg)],
        "separated_foreground": [{a} for a in fg],
        "separated_background": [{b} for b in bg],
    }


def flag(check: dict) -> str:
    """'trusted' when a judge's held-out check has recall >= 0.9 and false success <= 0.05."""
    return "trusted" if trusted(check) else "not trusted"

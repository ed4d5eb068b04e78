"""The CRS judge: an open-vocabulary detector. The synthetic world trains a YOLOv8n from its yaml on
the judge pool's true scenes with known boxes (an ordinary Ultralytics file); the real run loads
YOLO-World and sets its vocabulary to Table 5's prompts with the run's CLIP text tower."""

from __future__ import annotations

import json
import os
import shutil
import time as _time
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from avgas import checkpoints, instrument, paper, paths, protocol
from avgas.core import scores
from avgas.judges.base import ClassJudge
from avgas.judges.checks import (
    TRUST_FALSE,
    _validate_on_true_singles,
    both_ways,
    false_key,
    vocabulary,
)
from avgas.judges.clip import load_real_clip  # the real detector's prompts are embedded by CLIP
from avgas.judges.images import degrade, judge_view, to_float
from avgas.progress import tqdm


def _ultralytics(config_dir):
    """Import Ultralytics offline: YOLO_OFFLINE stops its network probes, and a font file in its
    config folder stops it fetching Arial.ttf (any TTF will do: matplotlib's DejaVuSans)."""
    config_dir = Path(config_dir)
    font = config_dir / "Ultralytics" / "Arial.ttf"
    if not font.is_file():
        font.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf", font)
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_CONFIG_DIR", str(config_dir))
    import ultralytics

    return ultralytics


def _write_yolo_set(folder, images, boxes_per_image, names, gen):
    """Ultralytics layout: images/*.png and labels/*.txt (class cx cy w h, normalised)."""
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
    prompts = paper.prompts()
    grid = grid or [round(x, 2) for x in np.arange(0.05, 0.96, 0.05)]
    checks = {}
    for t in grid:
        sets = [{w for w, s in f.items() if s >= t} for f in found]
        checks[t] = both_ways(pool, pairs, lambda i, classes: {prompts[c] for c in classes} <= sets[i])
    false = false_key(pairs)
    ok = [t for t in grid if checks[t][false] <= TRUST_FALSE]
    t = ok[0] if ok else min(grid, key=lambda t: (checks[t][false], -t))
    return t, checks[t]


def detector_settings(p, size: int) -> dict:
    """What this judge is a function of (its instrument-store key, avgas.instrument): its pool and
    its own settings, never a separator setting. `size`: the generator's image size it judges."""
    return {
        **protocol.judge_pool_settings(p),  # the pool it learns from and is checked on
        "epochs": p.detector_epochs,
        "size": size,
        "view": p.detector_imgsz,
        "names": vocabulary(p),
        "conf": p.detector_conf,
    }


def _trained_detector(p, cat, size: int, progress: bool = True):
    """Train an Ultralytics YOLOv8n from its yaml (no weights) on the judge pool's true images with
    known boxes, unless one with the same settings is saved; choose its confidence threshold on
    the pool's validation images (seen through the generator's resolution), and measure it both
    ways on the pool's held-out test images. Returns (YOLO model, report); report['conf'] is the
    threshold CRS uses."""
    ul = _ultralytics(p.cache_dir / "ultralytics")
    folder = p.folder.judges
    weights = folder / "detector.pt"
    names = vocabulary(p)
    view = p.detector_imgsz
    settings = detector_settings(p, size)
    meta = folder / "detector.json"
    stored = instrument.entry(p, "detector", settings, {"detector.pt": weights, "detector.json": meta})

    def own():
        saved = json.loads(meta.read_text())
        return saved["report"] if saved.get("settings") == json.loads(json.dumps(settings)) else None

    if instrument.fetch_or_adopt(stored, own) is not None:  # built before (avgas.instrument)
        return ul.YOLO(str(weights)), json.loads(meta.read_text())["report"]
    work = p.cache_dir / "detector_data"
    shutil.rmtree(work, ignore_errors=True)
    gen = torch.Generator().manual_seed(p.instrument_draw)
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
        seed=p.instrument_draw,
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
    instrument.publish(stored, report, seconds)
    return model, report


def load_ultralytics_file(path, config_dir=None):
    """An Ultralytics weights file (YOLO-World for the real run), or a CheckpointError naming it."""
    path = Path(path)
    where = checkpoints.where_to_get("detector_weights")
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


def load_real_detector(p, clip, tokenizer, words: list[str]):
    """YOLO-World from the local `detector_weights`, its vocabulary set to the prompts of Table 5.

    `set_classes` would fetch OpenAI's CLIP package and weights; instead the prompt embeddings are
    computed with the local CLIP text tower and written where YOLO-World reads them."""
    path = p.weight_path("detector_weights")
    model = load_ultralytics_file(path, p.cache_dir / "ultralytics")
    if not hasattr(model.model, "txt_feats"):
        raise checkpoints.CheckpointError(
            f"{path}: an Ultralytics model, but not YOLO-World (no text "
            f"embeddings) {checkpoints.where_to_get('detector_weights')}"
        )
    with torch.no_grad():
        txt = F.normalize(clip.encode_text(tokenizer(list(words))).float(), dim=-1)
    model.model.txt_feats = txt[None]
    model.model.model[-1].nc = len(words)
    model.model.names = dict(enumerate(words))
    return model


REAL_DETECTOR_CONF = 0.25  # YOLO-World's default, what the paper's CRS uses unless detector_conf is set


def _detector_for(p, cat, size: int, progress: bool = True, clip: tuple | None = None):
    """The CRS judge of this run: the trained stand-in (synthetic) or YOLO-World (real), whose
    prompts are embedded by the run's CLIP (`clip`: a loaded (model, tokenizer), else loaded here).
    Returns (model, report); report['conf'] is the confidence threshold CRS uses."""
    if p.world == "synthetic":
        return _trained_detector(p, cat, size, progress)

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
        return scores.represented(found, wanted)  # Eq. 5's term (core)

    return model, {
        "conf": conf,
        "validation": {},
        "held-out": _validate_on_true_singles(p, cat, size, judge),
        "vocabulary": names,
    }


@dataclass
class DetectorJudge(ClassJudge):
    """The CRS judge: the words found at the threshold `conf` (chosen on validation images)."""

    model: object = field(repr=False, default=None)
    vocabulary: list = field(default_factory=list)
    conf: float = 0.25
    view: int = 64
    device: str = "cpu"

    def words(self, images: torch.Tensor) -> list[set]:
        return detect(
            self.model,
            judge_view(images, self.size, self.view),
            self.vocabulary,
            self.conf,
            self.view,
            device=self.device,
        )

    def hits(self, images: torch.Tensor, wanted: list[set]) -> np.ndarray:
        return scores.represented(self.words(images), wanted)  # Eq. 5's term, defined once (core)


def judge(p, cat, size: int, progress: bool = True, clip=None) -> DetectorJudge:
    """The run's CRS judge, both worlds: the YOLOv8n trained here (synthetic) or YOLO-World from
    `detector_weights` (real), whose prompts are embedded by the run's CLIP (`clip`: its judge,
    judges.clip.judge; else loaded here). The one entry to this judge."""
    model, report = _detector_for(p, cat, size, progress, None if clip is None else (clip.model, clip.tokenizer))
    if p.world == "synthetic":
        settings = detector_settings(p, size)
    else:
        settings = {"weights": str(p.weight_path("detector_weights")), "conf": report["conf"], "view": p.detector_imgsz}
    return DetectorJudge(
        name="detector (CRS)",
        report=report,
        size=size,
        settings=settings,
        model=model,
        vocabulary=vocabulary(p),
        conf=report["conf"],
        view=p.detector_imgsz,
        device=ultralytics_device(p),
    )

"""Load and save the pretrained parts in the formats of the real files.

| part | real file                               | format |
|------|-----------------------------------------|--------|
| f_A  | ``sound2scene.pth``                     | plain state_dict, keys under ``audnet.`` |
| f_V  | ``swav.pth.tar``                        | flat state_dict, keys prefixed ``module.`` (trunk, projection head, prototypes) |
| G    | ``icgan_biggan_imagenet_res128/`` folder | ``state_dict_best{0,1}.pth`` (``config``, ``best_FID``, ...) + ``G_ema_best{0,1}.pth`` |

The synthetic stand-ins are saved in exactly these formats and read back through the same
loaders, so no later step knows which world it is in. Every loader refuses a wrong file with a
message that names the file, what it expected, the params key that points to it, and where the
real file comes from. Nothing is ever unpickled beyond tensors and a short allow-list.
"""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import torch
import torch.nn as nn

from avgas import models
from avgas.paths import torch_save_atomic as _save

# params key -> (what it is, where users get it)
SOURCES = {
    "sound2scene_checkpoint": (
        "Sound2Scene's audio encoder, sound2scene.pth",
        "the Sound2Scene repository (github.com/kaist-ami/Sound2Scene, formerly postech-ami), "
        "'Pretrained model' link in its README",
    ),
    "swav_checkpoint": (
        "SwAV ResNet-50 (800 epochs), swav.pth.tar",
        "facebookresearch/swav model zoo: swav_800ep_pretrain.pth.tar, the file IC-GAN and Sound2Scene use",
    ),
    "icgan_folder": (
        "IC-GAN generator folder icgan_biggan_imagenet_res128/ (state_dict_best0.pth, G_ema_best0.pth)",
        "facebookresearch/ic_gan README, 'Pretrained models': icgan_biggan_imagenet_res128.tar.gz, unpacked",
    ),
    "inception_weights": (
        "torch-fidelity's Inception-v3 (the TF FID network in PyTorch), weights-inception-2015-12-05-6726825d.pth",
        "github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth "
        "(or $TORCH_HOME/hub/checkpoints/ of a machine where TorchMetrics' FID ran once)",
    ),
    "detector_weights": (
        "Ultralytics YOLO-World v2 X, yolov8x-worldv2.pt",
        "github.com/ultralytics/assets/releases (yolov8x-worldv2.pt), or any machine where "
        "ultralytics.YOLOWorld('yolov8x-worldv2.pt') ran once",
    ),
    "clip_checkpoint": (
        "OpenAI's CLIP ViT-B/32 in OpenCLIP's format (architecture ViT-B-32-quickgelu), "
        "open_clip_pytorch_model.bin or .safetensors",
        "huggingface.co/timm/vit_base_patch32_clip_224.openai (open_clip_pytorch_model.bin)",
    ),
}

# What IC-GAN's pickled training config needs beyond tensors and containers.
ICGAN_SAFE_GLOBALS = [nn.ReLU]


class CheckpointError(ValueError):
    """A weight file that is missing or not in the expected format."""


def where_to_get(key: str) -> str:
    what, source = SOURCES[key]
    return f"(params key '{key}'; expected {what}; get it from {source})"


def first_line(e: BaseException) -> str:
    """An exception's message as one short line (some have none: EOFError on an empty file)."""
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:200]}" if text else type(e).__name__


def load_file(path: Path, key: str, safe_globals=()) -> object:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found {where_to_get(key)}")
    if path.stat().st_size == 0:
        raise CheckpointError(
            f"{path}: the file is empty (0 bytes: an interrupted download or copy?) {where_to_get(key)}"
        )
    try:
        with torch.serialization.safe_globals(list(safe_globals)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        refused = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(e))
        why = f"it pickles {refused.group(1)}, which is not on the allow-list" if refused else first_line(e)
        raise CheckpointError(f"{path}: refused to unpickle: {why} {where_to_get(key)}") from None
    except Exception as e:  # truncated or not a torch file at all
        raise CheckpointError(f"{path}: not a readable torch file ({first_line(e)}) {where_to_get(key)}") from None


def unwrap_state(obj, path: Path, key: str) -> dict:
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: expected a state_dict of tensors, got {type(obj).__name__} {where_to_get(key)}")
    return obj


def _load_strict(model: nn.Module, state: dict, path: Path, key: str) -> None:
    want = model.state_dict()
    missing = [k for k in want if k not in state]
    extra = [k for k in state if k not in want]
    wrong = [
        f"{k} {tuple(state[k].shape)} (expected {tuple(want[k].shape)})"
        for k in want
        if k in state and state[k].shape != want[k].shape
    ]
    if missing or extra or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys, e.g. {missing[:3]}")
        if extra:
            parts.append(f"{len(extra)} unexpected keys, e.g. {extra[:3]}")
        if wrong:
            parts.append(f"wrong shapes: {wrong[:3]}")
        raise CheckpointError(f"{path}: does not match the architecture: {'; '.join(parts)} {where_to_get(key)}")
    model.load_state_dict(state, strict=True)


# -------------------------------------------------------------------------------- f_A (audio)


def load_audio_encoder(path: Path, key: str = "sound2scene_checkpoint") -> models.AudioEncoder:
    """Sound2Scene's `sound2scene.pth`: a plain state_dict with keys under `audnet.`."""
    state = unwrap_state(load_file(path, key), Path(path), key)
    if "audnet.conv1.weight" not in state or "audnet.fc.weight" not in state:
        sample = list(state)[:3]
        raise CheckpointError(
            f"{path}: no 'audnet.' keys (found e.g. {sample}); expected the audio "
            f"encoder's ResNet-18 under 'audnet.' {where_to_get(key)}"
        )
    model = models.AudioEncoder(
        width=models.resnet18_width(state, "audnet."), out_dim=state["audnet.fc.weight"].shape[0]
    )
    _load_strict(model, state, Path(path), key)
    return model.eval()


def cpu_state(state: dict) -> dict:
    """Saved on the CPU (as the released files are), whatever device trained the model."""
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}  # channels-last weights saved plainly


def save_audio_encoder(model: models.AudioEncoder, path: Path) -> None:
    _save(cpu_state(model.state_dict()), path)


# -------------------------------------------------------------------------------- f_V (image)


def _strip(k: str) -> str:
    for prefix in ("module.", "_feature_blocks."):
        k = k.removeprefix(prefix)
    return k


def load_image_encoder(path: Path, key: str = "swav_checkpoint") -> nn.Module:
    """A SwAV checkpoint: `module.`-prefixed flat state_dict. The prefix is stripped, the trunk's
    keys are kept, the projection head and prototypes are dropped (as IC-GAN's loader does)."""
    raw = unwrap_state(load_file(path, key), Path(path), key)
    state = {_strip(k): v for k, v in raw.items()}
    if "layer1.0.conv1.weight" not in state or "conv1.weight" not in state:
        raise CheckpointError(
            f"{path}: no ResNet-50 trunk keys (expected e.g. 'module.conv1.weight', "
            f"'module.layer1.0.conv1.weight'; found e.g. {list(raw)[:3]}) {where_to_get(key)}"
        )
    model = models.image_encoder(width_per_group=int(state["layer1.0.conv1.weight"].shape[0]))
    trunk = {k: v for k, v in state.items() if k in model.state_dict()}
    _load_strict(model, trunk, Path(path), key)
    return model.eval()


def save_image_encoder(model: nn.Module, path: Path, heads: dict | None = None) -> None:
    """Save in SwAV's layout: `module.` + trunk keys, plus any head tensors (projection_head.*,
    prototypes.*), which loaders drop."""
    state = {f"module.{k}": v for k, v in cpu_state(model.state_dict()).items()}
    state.update({f"module.{k}": v for k, v in cpu_state(heads or {}).items()})
    _save(state, path)


# ------------------------------------------------------------------------------------- G (IC-GAN)


def read_icgan_state(folder: Path, key: str = "icgan_folder") -> tuple[str, dict]:
    """Pick the best checkpoint of an IC-GAN folder as IC-GAN does: of state_dict_best0/1.pth,
    the one with the lower stored best_FID. Returns (suffix, its dict)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: folder not found {where_to_get(key)}")
    found = {}
    for n in (0, 1):
        f = folder / f"state_dict_best{n}.pth"
        if f.is_file():
            d = load_file(f, key, ICGAN_SAFE_GLOBALS)
            if not isinstance(d, dict) or not isinstance(d.get("config"), dict):
                raise CheckpointError(
                    f"{f}: no 'config' dict in it; an IC-GAN state_dict_best file "
                    f"holds config, best_FID, itr, epoch {where_to_get(key)}"
                )
            found[f"best{n}"] = d
    if not found:
        raise CheckpointError(f"{folder}: neither state_dict_best0.pth nor state_dict_best1.pth {where_to_get(key)}")
    suffix = min(found, key=lambda s: float(found[s].get("best_FID", float("inf"))))
    return suffix, found[suffix]


def load_generator(folder: Path, key: str = "icgan_folder") -> models.Generator:
    folder = Path(folder)
    suffix, state = read_icgan_state(folder, key)
    config = state["config"]
    use_ema = bool(config.get("ema", True)) and bool(config.get("use_ema", True))
    wfile = folder / f"{'G_ema' if use_ema else 'G'}_{suffix}.pth"
    weights = unwrap_state(load_file(wfile, key), wfile, key)
    weights = {k.removeprefix("module."): v for k, v in weights.items()}  # DDP-saved G has it
    try:
        G = models.Generator(config)
    except (KeyError, ValueError) as e:
        raise CheckpointError(
            f"{folder / f'state_dict_{suffix}.pth'}: its config cannot build the generator: {e} {where_to_get(key)}"
        ) from None
    _load_strict(G, weights, wfile, key)
    return G.eval()


ICGAN_CONFIG = Path(__file__).parent / "resources" / "icgan_res128_config.json"  # the released G's config


def icgan_config(**arch) -> dict:
    """A config dict with every key of the released IC-GAN config (icgan_biggan_imagenet_res128:
    a copy of its 139 keys and values ships in avgas/resources), with the given architecture's
    values where they differ. G_activation and D_activation pickle an nn.ReLU, as the real config
    does; G_eval_mode is True, so IC-GAN's own loader puts G in eval mode."""
    real = json.loads(ICGAN_CONFIG.read_text())
    return {
        **real,
        "bottom_width": 4,
        "G_activation": nn.ReLU(inplace=False),
        "D_activation": nn.ReLU(inplace=False),
        **arch,
    }


def save_generator(
    G: models.Generator, folder: Path, best_fid: float, itr: int = 0, epoch: int = 0, suffix: str = "best0"
) -> None:
    """Write an IC-GAN folder: state_dict_<suffix>.pth (config, best_FID, ...) and
    G_ema_<suffix>.pth (the generator's weights). IC-GAN's own loader skips a file whose best_FID is
    999999 or more (its "never evaluated" start value), so a real score must be given."""
    if not 0 <= best_fid < 1e5:
        raise ValueError(f"best_FID {best_fid}: IC-GAN's loader ignores a checkpoint unless 0 <= best_FID < 1e5")
    folder = Path(folder)
    _save(
        {
            "itr": itr,
            "epoch": epoch,
            "save_num": 0,
            "save_best_num": 0,
            "best_IS": 0.0,
            "best_FID": float(best_fid),
            "es_epoch": 0,
            "config": icgan_config(**G.config),
        },
        folder / f"state_dict_{suffix}.pth",
    )
    _save(cpu_state(G.state_dict()), folder / f"G_ema_{suffix}.pth")


def load_parts(p) -> tuple:
    """(f_A, f_V, G) from the params' weight paths, through the loaders above."""
    dev = p.torch_device
    return (
        load_audio_encoder(p.weight_path("sound2scene_checkpoint")).to(dev),
        load_image_encoder(p.weight_path("swav_checkpoint")).to(dev),
        load_generator(p.weight_path("icgan_folder")).to(dev),
    )


# --------------------------------------------------------------------- Inception (FID and IS)


def inception_weights(p) -> str:
    """The real run's Inception file for TorchMetrics (through torch-fidelity), checked before
    use: a missing or wrong file is named here, not deep inside TorchMetrics."""
    import torch_fidelity  # noqa: F401 - FID/IS read the file through it: fail here if it is missing

    key = "inception_weights"
    path = p.weight_path(key)
    state = unwrap_state(load_file(path, key), path, key)
    need = {"Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3), "fc.weight": (1008, 2048)}
    for k, shape in need.items():
        if k not in state or tuple(state[k].shape) != shape:
            got = tuple(state[k].shape) if k in state else "missing"
            raise CheckpointError(f"{path}: not the FID Inception ({k}: {got}, expected {shape}) {where_to_get(key)}")
    return str(path)

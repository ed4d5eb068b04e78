"""The schema of a run's settings: every key, its type, default, rules and one-line help.

A run is described by one flat YAML file (``params/*.yaml``). The same key names are papermill
parameters in the notebooks, ``-p key=value`` overrides on the command line, and attributes of
:class:`Params` in the module. This module says what the keys are; :mod:`avgas.params.loading`
reads and validates them (before any work starts: an unknown key, a wrong type or an impossible
value stops the run with a message naming the key, the file and what is allowed), and
:mod:`avgas.params.design` derives the experiment's pairs and groups from them.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

from avgas import paths
from avgas.params import design
from avgas.runfolder import DataFolder, RunFolder


class ParamsError(ValueError):
    """A params file or override that cannot be used. The message says which key and why."""


def _f(default, help: str, **rules):
    """A schema field: its default, a one-line help text, and optional rules (min, max, ...)."""
    kw = {"default_factory": default} if callable(default) else {"default": default}
    return field(metadata={"help": help, **rules}, **kw)


@dataclass(frozen=True)
class Params:
    # --- the run ---------------------------------------------------------------------------
    name: str = _f("quick", "run name: outputs go to <run_root>/<name>/", pattern=r"^[A-Za-z0-9_.-]+$")
    run_root: str = _f("runs", "folder that holds run folders (relative to the project root)")
    world: Literal["synthetic", "vggsound"] = _f(
        "synthetic", "which data: the generated synthetic world, or VGGSound clips you have"
    )
    seed: int = _f(0, "seed for world generation, splits, tuples and training", min=0)
    instrument_seed: Optional[int] = _f(
        None,
        "synthetic world: which draw of the instrument (the stand-ins' and judges' pools, their training); "
        "null = the same as seed. `--sweep instrument_seed=1` redraws the instrument and keeps the rest",
        min=0,
    )
    device: Literal["auto", "cpu", "cuda"] = _f("auto", "torch device; auto = CUDA when present")
    amp: bool = _f(
        False,
        "separator training in bfloat16 autocast: on CUDA, and on a CPU with bfloat16 instructions "
        "(AVX512-BF16 or AMX; elsewhere ignored, and the log says so). It trains another model: a separator "
        "of its own in the store",
    )
    threads: int = _f(0, "torch CPU threads; 0 = torch's default", min=0, max=256)
    progress_seconds: float = _f(
        30.0, "batch runs: seconds between progress lines (log.txt and stderr) of a long step", min=0.5, max=3600.0
    )

    # --- data ----------------------------------------------------------------------------------
    data_root: Optional[str] = _f(
        None,
        "folder with audios/, images/ and the metadata csv; null = <run folder>/data "
        "(where the synthetic world is written)",
    )
    metadata_csv: Optional[str] = _f(
        None, "metadata in VGGSound's row format (ytid,start_seconds,label,split); null = <data_root>/metadata.csv"
    )
    clips_per_class: int = _f(40, "synthetic world: clips generated per class", min=6, max=100000)
    test_fraction: float = _f(
        0.2, "synthetic world: share of each class's clips in the 'test' split", min=0.05, max=0.5
    )
    val_fraction: float = _f(0.15, "share of each class's 'train' clips held out for validation", min=0.05, max=0.5)
    clip_seconds: float = _f(
        1.0,
        "clip length in seconds: clips are tiled/cut to it before the spectrogram (Sound2Scene: 10)",
        min=0.1,
        max=10.0,
    )
    image_size: int = _f(64, "synthetic world: image side in pixels", choices=[32, 64, 128])
    combinations: Optional[dict] = _f(
        None, "background class -> list of foreground classes; null = Table 4 of the paper"
    )
    relative_level_db: float = _f(
        0.0,
        "foreground level relative to background when mixing, dB (paper: plain addition, 0 dB)",
        min=-30.0,
        max=30.0,
    )
    sources: int = _f(
        2,
        "sources per mixture: one background and sources-1 of its foregrounds, all with distinct "
        "prompts (paper: 2; the groups are drawn from the combinations, see Params.groups)",
        min=2,
        max=5,
    )
    stand_in_sources: list | None = _f(
        None,
        "synthetic world: the scene sizes the stand-ins f_V, G and f_A learn from; null = this run's "
        "`sources` (its own stand-ins); [2, 3] = one set for the two-source runs and their three-source "
        "sibling, trained on scenes of both sizes of the generator pairs, every evaluated pairing of "
        "either kept apart (the instrument store then builds them once)",
    )
    unseen_pairs: int = _f(
        0,
        "two sources only: (foreground, background) pairings of the run's classes that are never mixed "
        "in training (nor seen by G and f_V), evaluated in notebook 10 beside the combinations",
        min=0,
        max=40,
    )
    train_tuples: int = _f(400, "training tuples, spread evenly over the combinations (paper: 20000)", min=1)
    val_tuples: int = _f(100, "validation tuples, spread evenly over the combinations", min=1)
    test_tuples: int = _f(100, "held-out test tuples, spread evenly over the combinations", min=1)
    spectrogram_batch: int = _f(64, "clips per batch when computing spectrograms", min=1, max=4096)

    # --- pretrained parts (real files on the real run; stand-ins trained and saved on the synthetic one)
    sound2scene_checkpoint: Optional[str] = _f(
        None, "Sound2Scene audio encoder sound2scene.pth; null = <run>/checkpoints/sound2scene.pth"
    )
    swav_checkpoint: Optional[str] = _f(None, "SwAV ResNet-50 swav.pth.tar; null = <run>/checkpoints/swav.pth.tar")
    icgan_folder: Optional[str] = _f(
        None, "IC-GAN folder (state_dict_best*.pth, G_ema_best*.pth); null = <run>/checkpoints/icgan/"
    )
    # VGGSound ingestion (python -m avgas prepare-vggsound): from the videos to data_root
    vggsound_csv: Optional[str] = _f(None, "VGGSound's vggsound.csv (ytid,start_seconds,label,split; no header)")
    video_dir: Optional[str] = _f(None, "folder of VGGSound videos, <ytid>_<start:06d>.mp4 or <ytid>_<ms>_<ms>.mp4")
    frames_json: Optional[str] = _f(
        None,
        "Sound2Scene's top1_boxes_top10_moments.json (stem -> frame numbers at "
        "10 fps, best first); null = the middle frame of every clip",
    )
    frame_index_base: int = _f(0, "what the frame json counts from: 0 or 1", choices=[0, 1])
    min_clip_seconds: float = _f(5.0, "ingestion: clips with less audio than this are skipped", min=0.0)
    ingest_workers: int = _f(0, "ingestion: worker processes; 0 = one per CPU core", min=0, max=256)
    # the judges of the real run (the synthetic world trains its own into <run>/checkpoints/judges/)
    inception_weights: Optional[str] = _f(
        None, "real run: torch-fidelity's Inception weights-inception-2015-12-05-6726825d.pth (FID/IS)"
    )
    detector_weights: Optional[str] = _f(None, "real run: Ultralytics YOLO-World yolov8x-worldv2.pt (CRS)")
    clip_checkpoint: Optional[str] = _f(
        None, "real run: OpenCLIP ViT-B-32 weights, e.g. open_clip_pytorch_model.bin (R@K)"
    )
    clip_model: str = _f(
        "ViT-B-32",
        "real run: OpenCLIP architecture of clip_checkpoint: a model name "
        "(the paper's ViT-B-32) or the path of a model-config .json",
    )
    fv_image_size: int = _f(32, "side of the images fed to f_V (Sound2Scene/IC-GAN: 224)", min=16, max=512)
    retrain_stand_ins: bool = _f(False, "synthetic world: train the stand-ins again even if saved ones exist")
    stand_in_batch: int = _f(64, "synthetic stand-ins: batch size", min=4, max=1024)
    scenes_per_combination: int = _f(
        40,
        "synthetic world: two-class scenes per combination: the stand-ins' "
        "budget (spread over the generator pairs) and the judges' training "
        "scenes per evaluated pair",
        min=0,
        max=10000,
    )
    fv_width_per_group: int = _f(8, "synthetic f_V: ResNet-50 bottleneck width (real: 64)", choices=[4, 8, 16, 32, 64])
    fv_steps: int = _f(300, "synthetic f_V: training steps", min=1)
    g_resolution: int = _f(32, "synthetic G: output side in pixels", choices=[32, 64, 128])
    g_channels: int = _f(16, "synthetic G: BigGAN G_ch (real: 96)", min=2, max=128)
    g_dim_z: int = _f(40, "synthetic G: noise size (split into one chunk per block + 1)", min=4, max=256)
    g_feature_proj: int = _f(64, "synthetic G: size of the projected instance feature (real: 512)", min=8, max=1024)
    g_steps: int = _f(1000, "synthetic G: GAN training steps", min=1)
    g_lr: float = _f(2e-4, "synthetic G: Adam learning rate of G (D: twice this)", min=1e-6, max=1e-1)
    g_anchor_weight: float = _f(
        10.0, "synthetic G: weight of the coarse (8x8) L1 anchor to the conditioning image", min=0.0
    )
    g_diversity_weight: float = _f(
        2.0, "synthetic G: weight of the mode-seeking term (different z, different image)", min=0.0
    )
    g_blend_share: float = _f(
        0.5,
        "synthetic G: share of two-class scenes (generator pairs only) conditioned "
        "on the blend of their parts' features instead of their own (0: off)",
        min=0.0,
        max=1.0,
    )
    fa_width: float = _f(0.25, "synthetic f_A: ResNet-18 width multiplier (real: 1.0)", min=0.05, max=1.0)
    fa_epochs: int = _f(20, "synthetic f_A: epochs of Sound2Scene's InfoNCE training", min=1)

    # --- the separator (AV-GAS), Section 4.1 ---------------------------------------------------
    alignments: list = _f(
        lambda: ["A2A", "A2V", "A2A+A2V"],
        "separators to train: A2A, A2V, A2A+A2V (the paper's fixed slot order: foreground(s) first, "
        "background last), or the same with -PIT (slots assigned to sources per tuple, no order)",
        items=["A2A", "A2V", "A2A+A2V", "A2A-PIT", "A2V-PIT", "A2A+A2V-PIT"],
    )
    separator_width: float = _f(0.25, "separator ResNet-18 width multiplier (paper: 1.0)", min=0.05, max=1.0)
    epochs: int = _f(20, "separator epochs (paper: 50)", min=1)
    batch_size: int = _f(16, "separator batch size (paper: 16)", min=2, max=4096)
    lr: float = _f(1e-3, "separator Adam learning rate (paper: 1e-3)", min=1e-7, max=1.0)
    weight_decay: float = _f(1e-5, "separator Adam weight decay (paper: 1e-5)", min=0.0, max=1.0)
    resume: bool = _f(False, "continue a killed separator training from its last checkpoint")
    train_processes: int = _f(
        1,
        "separator training in this many data-parallel processes on this node (notebook 03 launches "
        "torchrun and waits; 1 = in the notebook's kernel); the global batch stays batch_size",
        min=1,
        max=64,
    )
    train_jobs: int = _f(
        1,
        "separator trainings run side by side, each in a process of its own with one torch thread "
        "(notebook 03; 1 = one after another in the notebook's kernel). Small convolutions gain "
        "little from a second thread; two processes keep two cores busy. Every training is the one "
        "made alone with threads: 1",
        min=1,
        max=64,
    )
    separator_seeds: int = _f(
        1,
        "separators (and the controls) trained per alignment, with seeds seed, seed+1, ...; "
        "tables give mean ± std over them, claims pool them",
        min=1,
        max=20,
    )
    control: bool = _f(
        True,
        "also train the two controls: f_A fine-tuned on the mixtures towards the blend of the f_A "
        "targets (A2A's) and of the f_V targets (A2V's) (same optimiser, epochs and selection as the separators)",
    )

    # --- judges (synthetic world) -------------------------------------------------------------------
    detector_epochs: int = _f(20, "synthetic judges: epochs of the YOLOv8n detector (CRS)", min=1)
    detector_imgsz: int = _f(
        64, "detector input size (Ultralytics imgsz, a multiple of 32)", choices=[32, 64, 96, 128, 640]
    )
    detector_conf: Optional[float] = _f(
        None,
        "detector confidence threshold for CRS; null = chosen on the judge "
        "pool's validation images (synthetic) or 0.25, YOLO-World's "
        "default (real run)",
        min=0.0,
        max=1.0,
    )
    clip_steps: int = _f(600, "synthetic judges: training steps of the small OpenCLIP model (R@K)", min=1)
    classifier_steps: int = _f(800, "synthetic judges: training steps of the scene classifier (FID/IS features)", min=1)

    # --- generation (Section 3.3) ------------------------------------------------------------------
    mix_lambda: float = _f(0.5, "lambda of the mixed image G(z, lambda h_fg + (1 - lambda) h_bg)", min=0.0, max=1.0)

    # --- derived paths -------------------------------------------------------------------------
    @property
    def run_dir(self) -> Path:
        return paths.resolve(self.run_root) / self.name

    @property
    def folder(self) -> RunFolder:
        """The run folder and the names of its files (avgas.runfolder)."""
        return RunFolder(self.run_dir)

    @property
    def data(self) -> DataFolder:
        """The data folder and the names in it (avgas.runfolder)."""
        return DataFolder(self.data_dir)

    @property
    def data_dir(self) -> Path:
        return paths.resolve(self.data_root) if self.data_root else self.folder.data

    @property
    def metadata_path(self) -> Path:
        return paths.resolve(self.metadata_csv) if self.metadata_csv else self.data.metadata

    @property
    def cache_dir(self) -> Path:
        return self.folder.cache

    @property
    def checkpoint_dir(self) -> Path:
        return self.folder.checkpoints

    @property
    def torch_device(self):
        """The torch device of this run: 'auto' is CUDA when torch sees a GPU, else the CPU."""
        import torch

        if self.device == "cuda" and not torch.cuda.is_available():
            raise ParamsError(
                "device: cuda, but torch sees no GPU (a CPU-only torch, or no GPU visible "
                "to this job); use device: auto or cpu"
            )
        return torch.device("cuda" if self.device != "cpu" and torch.cuda.is_available() else "cpu")

    def weight_path(self, key: str) -> Path:
        """Where a pretrained part is read from: the params key if set, else the run folder
        (where the synthetic stand-ins are saved)."""
        value = getattr(self, key)
        return paths.resolve(value) if value else self.folder.weights(key)

    # --- the experiment design (avgas.params.design) ---------------------------------------------
    def combination_list(self) -> list[tuple[str, str]]:
        """(foreground, background) pairs in a fixed order (design.combination_list)."""
        return design.combination_list(self)

    def groups(self) -> list[tuple[str, ...]]:
        """The evaluated source groups, each (foreground, ..., background) (design.groups)."""
        return design.groups(self)

    def unseen(self) -> list[tuple[str, str]]:
        """The unseen pairings of the run's classes, never mixed in training (design.unseen)."""
        return design.unseen(self)

    @property
    def instrument_draw(self) -> int:
        """The seed of the instrument: its pools (avgas.protocol), stand-ins and judges."""
        return self.seed if self.instrument_seed is None else self.instrument_seed

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> "Params":
        """A copy with some keys changed, validated like a loaded file."""
        from avgas.params.loading import validate  # loading imports this module: a cycle at import time

        return validate({**self.to_dict(), **changes}, source="replace()")


FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(Params)}
HINTS = typing.get_type_hints(Params)


def describe() -> str:
    """A table of every key, its type, default and meaning (for --help and the README)."""
    rows = []
    for name, f in FIELDS.items():
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        rows.append(f"{name:20s} {type_name(HINTS[name]):28s} default {default!r:12}  {f.metadata['help']}")
    return "\n".join(rows)


def type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(map(repr, typing.get_args(tp)))
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return type_name(args[0]) + " or null"
    return getattr(tp, "__name__", str(tp))


WEIGHT_KEYS = (
    "sound2scene_checkpoint",
    "swav_checkpoint",
    "icgan_folder",
    "inception_weights",
    "detector_weights",
    "clip_checkpoint",
)
# What VGGSound ingestion (python -m avgas prepare-vggsound) reads: the csv, the videos, the frame json.
INGEST_INPUT_KEYS = ("vggsound_csv", "video_dir", "frames_json")
# Every file and folder the user gives avgas to read; avgas never writes to them (see paths.protect).
INPUT_KEYS = WEIGHT_KEYS + ("clip_model",) + INGEST_INPUT_KEYS

"""Every run setting in one typed schema.

A run is described by one flat YAML file (``params/*.yaml``). The same key names are papermill
parameters in the notebooks, ``-p key=value`` overrides on the command line, and attributes of
:class:`Params` in the module. Everything is validated when it is loaded, before any work starts:
an unknown key, a wrong type or an impossible value stops the run with a message naming the key,
the file and what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import yaml

from avgas import paths


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
    amp: bool = _f(False, "separator training in bfloat16 autocast on CUDA (ignored on the CPU)")
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
    def data_dir(self) -> Path:
        return paths.resolve(self.data_root) if self.data_root else self.run_dir / "data"

    @property
    def metadata_path(self) -> Path:
        return paths.resolve(self.metadata_csv) if self.metadata_csv else self.data_dir / "metadata.csv"

    @property
    def cache_dir(self) -> Path:
        return self.run_dir / "cache"

    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / "checkpoints"

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
        default = {
            "sound2scene_checkpoint": "sound2scene.pth",
            "swav_checkpoint": "swav.pth.tar",
            "icgan_folder": "icgan",
            "inception_weights": "judges/inception.pth",
            "detector_weights": "judges/detector.pt",
            "clip_checkpoint": "judges/clip.pt",
        }[key]
        value = getattr(self, key)
        return paths.resolve(value) if value else self.checkpoint_dir / default

    def combination_list(self) -> list[tuple[str, str]]:
        """(foreground, background) pairs in a fixed order."""
        from avgas import paper

        combos = self.combinations if self.combinations is not None else paper.combinations()
        return [(fg, bg) for bg, fgs in combos.items() for fg in fgs]

    def groups(self) -> list[tuple[str, ...]]:
        """The evaluated source groups, each (foreground, ..., background) with `sources` classes:
        for 2 the combinations themselves; beyond, a background with every set of sources-1 of its
        foregrounds whose Table 5 prompts differ from each other and from the background's (a
        judge cannot tell two classes with one prompt apart, so such a group could not be scored)."""
        import itertools

        from avgas import paper

        pairs = self.combination_list()
        if self.sources == 2:
            return pairs
        prompts = paper.prompts()
        word = lambda c: prompts.get(c, c)  # noqa: E731 - a class without a prompt is its own word
        out = []
        for bg in dict.fromkeys(b for _, b in pairs):
            fgs = [f for f, b in pairs if b == bg]
            for chosen in itertools.combinations(fgs, self.sources - 1):
                words = [word(c) for c in (*chosen, bg)]
                if len(set(words)) == len(words):
                    out.append((*chosen, bg))
        return out

    def unseen(self) -> list[tuple[str, str]]:
        """The unseen pairings (two sources only): `unseen_pairs` (foreground, background) pairs of
        the run's classes that are not combinations, each background in turn, the foreground
        drawn with the seed; prompts distinct, so a judge can tell the two apart."""
        import numpy as np

        from avgas import paper

        if self.sources != 2 or not self.unseen_pairs:
            return []
        pairs = self.combination_list()
        prompts = paper.prompts()
        fgs = sorted({f for f, _ in pairs})
        bgs = list(dict.fromkeys(b for _, b in pairs))
        free = {bg: [f for f in fgs if (f, bg) not in pairs and prompts.get(f, f) != prompts.get(bg, bg)] for bg in bgs}
        rng = np.random.default_rng([self.seed, 21])
        for bg in bgs:
            rng.shuffle(free[bg])
        out = []
        while len(out) < self.unseen_pairs and any(free.values()):
            for bg in bgs:
                if free[bg] and len(out) < self.unseen_pairs:
                    out.append((free[bg].pop(0), bg))
        return out

    @property
    def instrument_draw(self) -> int:
        """The seed of the instrument: its pools (avgas.protocol), stand-ins and judges."""
        return self.seed if self.instrument_seed is None else self.instrument_seed

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> "Params":
        return _validate({**self.to_dict(), **changes}, source="replace()")


FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(Params)}
_HINTS = typing.get_type_hints(Params)


def describe() -> str:
    """A table of every key, its type, default and meaning (for --help and the README)."""
    rows = []
    for name, f in FIELDS.items():
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        rows.append(f"{name:20s} {_type_name(_HINTS[name]):28s} default {default!r:12}  {f.metadata['help']}")
    return "\n".join(rows)


def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(map(repr, typing.get_args(tp)))
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _type_name(args[0]) + " or null"
    return getattr(tp, "__name__", str(tp))


def _check_type(key: str, value: Any, tp, where: str) -> Any:
    """Return the value (ints widened to float where a float is wanted) or raise ParamsError."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(tp):
            return None
        inner = [a for a in typing.get_args(tp) if a is not type(None)][0]
        return _check_type(key, value, inner, where)
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ParamsError(f"{where}: '{key}' is {value!r}; allowed values: " + ", ".join(map(repr, allowed)))
        return value
    if tp is float and isinstance(value, str):
        # YAML 1.1 reads `1e-3` (no dot) as a string; a number written that way is still a number
        try:
            value = float(value.strip())
        except ValueError:
            pass
    ok = {
        bool: lambda v: isinstance(v, bool),
        int: lambda v: isinstance(v, int) and not isinstance(v, bool),
        float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        str: lambda v: isinstance(v, str),
        dict: lambda v: isinstance(v, dict),
        list: lambda v: isinstance(v, list),
    }[tp](value)
    if not ok:
        raise ParamsError(f"{where}: '{key}' must be {_type_name(tp)}, got {value!r} ({type(value).__name__})")
    if tp is float and not math.isfinite(value):
        raise ParamsError(f"{where}: '{key}' is {value!r}; it must be a finite number")
    return float(value) if tp is float else value


def _check_rules(key: str, value: Any, where: str) -> None:
    if value is None:
        return
    meta = FIELDS[key].metadata
    if "min" in meta and value < meta["min"]:
        raise ParamsError(f"{where}: '{key}' is {value!r}; it must be >= {meta['min']}")
    if "max" in meta and value > meta["max"]:
        raise ParamsError(f"{where}: '{key}' is {value!r}; it must be <= {meta['max']}")
    if "choices" in meta and value not in meta["choices"]:
        raise ParamsError(f"{where}: '{key}' is {value!r}; allowed values: {meta['choices']}")
    if "items" in meta:
        bad = [v for v in value if v not in meta["items"]]
        if bad or not value or len(set(value)) != len(value):
            raise ParamsError(
                f"{where}: '{key}' is {value!r}; it must be a non-empty list of distinct values from {meta['items']}"
            )
    if "pattern" in meta:
        import re

        if not re.match(meta["pattern"], value):
            raise ParamsError(f"{where}: '{key}' is {value!r}; it must match {meta['pattern']}")


def _check_combinations(combos: dict, world: str, where: str) -> None:
    from avgas import paper

    if not combos:
        raise ParamsError(f"{where}: 'combinations' is empty; give background -> [foregrounds]")
    for bg, fgs in combos.items():
        if not isinstance(fgs, list) or not fgs or not all(isinstance(x, str) for x in fgs):
            raise ParamsError(
                f"{where}: 'combinations' entry {bg!r} must map to a non-empty list of "
                f"foreground class names, got {fgs!r}"
            )
        if world == "synthetic":  # the synthetic world knows only the paper's classes
            known_bg, known_fg = paper.background_classes(), paper.foreground_classes()
            if bg not in known_bg:
                raise ParamsError(
                    f"{where}: 'combinations' background {bg!r} is not a class of the "
                    f"synthetic world; allowed backgrounds: {known_bg}"
                )
            for fg in fgs:
                if fg not in known_fg:
                    raise ParamsError(
                        f"{where}: 'combinations' foreground {fg!r} (under {bg!r}) is not "
                        f"a class of the synthetic world; allowed foregrounds: {known_fg}"
                    )


# The weight files and folders a run reads: the three pretrained parts and the real run's judges.
WEIGHT_KEYS = (
    "sound2scene_checkpoint",
    "swav_checkpoint",
    "icgan_folder",
    "inception_weights",
    "detector_weights",
    "clip_checkpoint",
)
# Files and folders the user gives avgas to read; avgas never writes to them (see paths.protect).
INPUT_KEYS = WEIGHT_KEYS + (
    "clip_model",
    "vggsound_csv",
    "video_dir",
    "frames_json",
)


def _check_inputs_apart(p: "Params", where: str) -> None:
    """The prepared metadata csv (an output of prepare-vggsound) must not be one of its inputs:
    writing it would overwrite VGGSound's csv or the frame json."""
    out = p.metadata_path
    for key in ("vggsound_csv", "frames_json"):
        value = getattr(p, key)
        if value and paths.overlap(paths.resolve(value), out):
            raise ParamsError(
                f"{where}: '{key}' ({value}) and the prepared metadata csv ({out}, params key "
                f"'metadata_csv') are the same file; prepare-vggsound writes the latter, so "
                f"give it another path, e.g. metadata_csv: <data_root>/metadata.csv"
            )


def protect_inputs(p: "Params", prepared_data: bool = True) -> None:
    """Register every input path of `p` so that no avgas write can touch it (paths.guard); with
    `prepared_data`, the prepared VGGSound folder too (an input of every step but ingestion)."""
    for key in INPUT_KEYS:
        value = getattr(p, key)
        if value and (key != "clip_model" or str(value).endswith(".json")):
            paths.protect(paths.resolve(value), key)
    if prepared_data and p.world == "vggsound":  # only prepare-vggsound writes the prepared data
        paths.protect(p.data_dir, "data_root")
        paths.protect(p.metadata_path, "metadata_csv")


def _unknown_key(key: str, where: str) -> ParamsError:
    near = difflib.get_close_matches(key, FIELDS, n=1)
    hint = f" (did you mean '{near[0]}'?)" if near else ""
    return ParamsError(f"{where}: unknown key '{key}'{hint}. Allowed keys: " + ", ".join(FIELDS))


def _validate(raw: dict, source: str) -> Params:
    values = {}
    for key, value in raw.items():
        where = source
        if key not in FIELDS:
            raise _unknown_key(key, where)
        value = _check_type(key, value, _HINTS[key], where)
        _check_rules(key, value, where)
        values[key] = value
    p = Params(**values)
    if p.combinations is not None:
        _check_combinations(p.combinations, p.world, source)
    _check_inputs_apart(p, source)
    n_combos = len(p.groups())
    if not n_combos:
        raise ParamsError(
            f"{source}: 'sources' is {p.sources}, but no background of 'combinations' has {p.sources - 1} "
            "foregrounds with distinct prompts; use fewer sources or list more foregrounds"
        )
    what = "combinations" if p.sources == 2 else f"{p.sources}-class groups"
    for key in ("train_tuples", "val_tuples", "test_tuples"):
        if getattr(p, key) < n_combos:
            raise ParamsError(
                f"{source}: '{key}' is {getattr(p, key)}; it must be at least the number "
                f"of {what} ({n_combos}) so every one gets a tuple"
            )
    if p.sources == 2 and len(p.unseen()) < p.unseen_pairs:
        raise ParamsError(
            f"{source}: 'unseen_pairs' is {p.unseen_pairs}, but the run's classes have only {len(p.unseen())} "
            "(foreground, background) pairings that are not combinations (with distinct prompts); ask for fewer"
        )
    return p


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key written twice (plain YAML keeps the last silently)."""


def _no_duplicates(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ParamsError(f"line {key_node.start_mark.line + 1}: key '{key}' is given twice")
        seen.add(key)
    return loader.construct_mapping(node, deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def parse_override(text: str) -> tuple[str, Any]:
    """'key=value' -> (key, YAML-parsed value), as on the command line (-p key=value)."""
    if "=" not in text:
        raise ParamsError(f"override -p {text!r} must look like key=value")
    key, value = text.split("=", 1)
    try:
        return key.strip(), yaml.load(value, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as e:
        raise ParamsError(f"override -p {text!r}: the value is not valid YAML ({str(e).splitlines()[0]})") from None


def _unique_overrides(texts: list[str]) -> dict:
    """-p overrides as a dict; a key given twice is refused (the last would win in silence)."""
    out: dict = {}
    for text in texts:
        key, value = parse_override(text)
        if key in out:
            raise ParamsError(
                f"override -p {key} is given twice ({out[key]!r} and {value!r}); give it once "
                f"(for one run per value: --sweep {key}=V1,V2)"
            )
        out[key] = value
    return out


def _read(path: Path) -> dict:
    """A params file's settings: UTF-8 YAML, a mapping, no key twice, not empty."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ParamsError(f"{path}: not UTF-8 text (byte {e.start}); save the params file as UTF-8") from None
    except OSError as e:
        raise ParamsError(f"{path}: cannot read the params file ({e.strerror})") from None
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)
    except ParamsError as e:
        raise ParamsError(f"{path}: {e}") from None
    except yaml.YAMLError as e:
        raise ParamsError(f"{path}: not valid YAML: {' '.join(str(e).split())}") from None
    if raw is None:
        raise ParamsError(
            f"{path}: the params file is empty (or only comments); give at least one "
            "key, e.g. `name: myrun` (every key and its default: python -m avgas params)"
        )
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: must hold key: value pairs, got {type(raw).__name__}")
    return raw


def load(path: str | Path | None = None, overrides: dict | list[str] | None = None) -> Params:
    """Load and validate a params file, then apply overrides (a dict, or 'key=value' strings)."""
    raw: dict = {}
    source = "defaults"
    if path is not None:
        path = paths.resolve(path)
        if not path.is_file():
            raise ParamsError(f"params file not found: {path}")
        raw = _read(path)
        source = str(path)
    _validate(raw, source)  # the file alone must be valid, so its errors name the file
    if overrides:
        if isinstance(overrides, list):
            overrides = _unique_overrides(overrides)
        for key in overrides:
            if key not in FIELDS:
                raise _unknown_key(key, "override -p")
        raw = {**raw, **overrides}
        source = f"{source} with overrides ({', '.join(overrides)})"
    return _validate(raw, source)


def from_notebook(namespace: dict) -> Params:
    """Params inside a notebook: the file named by ``params_file``, overridden by every params
    key that papermill injected (or the parameters cell set to something other than None)."""
    overrides = {k: namespace[k] for k in FIELDS if namespace.get(k) is not None}
    p = load(namespace.get("params_file"), overrides)
    protect_inputs(p)
    if p.threads:  # set deliberately: 2 busy threads can be far slower than 1 on tiny ops
        import torch

        torch.set_num_threads(p.threads)
    return p


def save(p: Params, path: Path) -> None:
    paths.atomic_write_text(
        path,
        "# resolved params of this run (what actually ran)\n"
        + yaml.safe_dump(p.to_dict(), sort_keys=False, allow_unicode=True),
    )


def sweep_grid(p: Params, specs: list[str]) -> list[Params]:
    """Several --sweep options: one run per combination of their values (a grid), named
    <name>-<key1><value1>-<key2><value2>; a key swept twice is refused."""
    grid = [p]
    seen = set()
    for spec in specs:
        key = spec.partition("=")[0].strip()
        if key in seen:
            raise ParamsError(f"--sweep {key} is given twice; give all its values once: --sweep {key}=V1,V2,...")
        seen.add(key)
        grid = [q for base in grid for q in sweep(base, spec)]
    return grid


def sweep(p: Params, spec: str) -> list[Params]:
    """'key=v1,v2,...' -> one validated Params per value, each named <name>-<key><value> so
    that every run has its own folder (seeds, or any other key, as one list instead of copied
    files; the ablations are already one list: `alignments`)."""
    key, _, values = spec.partition("=")
    key = key.strip()
    if key not in FIELDS:
        raise _unknown_key(key, "--sweep")
    if not values:
        raise ParamsError(f"--sweep {spec!r} must look like key=v1,v2,...")
    out = []
    for text in values.split(","):
        _, value = parse_override(f"{key}={text}")
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", str(text).strip())
        out.append(_validate({**p.to_dict(), key: value, "name": f"{p.name}-{key}{safe}"}, f"--sweep {key}={text}"))
    return out

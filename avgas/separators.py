"""The trained separators as the layers above meet them: their inputs, their files, their names.

- A split's inputs (`separator_data`): the mixed spectrograms and the frozen targets f_A(clip)
  and f_V(image) of every source, computed once and cached.
- A trained model's file (`load_separator`): checkpoints/separator_<alignment>[-seed<s>]/best.pt,
  read back into avgas.core's separator (or control).
- Their embeddings of a split's mixtures (`embeddings`), through avgas.core.separator.

Training (avgas.train) writes what this module reads; evaluation reads it here, never through the
training module (the import contract in pyproject.toml).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from avgas import codestamp, data, models, paths, slots
from avgas import spectrogram as spec
from avgas.checkpoints import CheckpointError, first_line
from avgas.core import losses, separator
from avgas.params import Params

# ------------------------------------------------------------------------------ frozen targets


def _file_stamp(path: Path) -> str:
    """A content hash of a weight file (or folder): re-saving identical weights changes nothing."""
    return paths.content_stamp(path)


@dataclass
class Targets:
    """Frozen embeddings of single clips, by stem: f_A(audio) and f_V(image), (n, D) each."""

    stems: list
    audio: torch.Tensor
    image: torch.Tensor

    def rows(self, stems) -> tuple[torch.Tensor, torch.Tensor]:
        pos = {s: i for i, s in enumerate(self.stems)}
        idx = torch.tensor([pos[s] for s in stems])
        return self.audio[idx], self.image[idx]


def frozen_targets(p: Params, cat: pd.DataFrame, stems, name: str, fa, fv, progress: bool = True) -> Targets:
    """f_A and f_V embeddings of the given clips, computed once and cached (the cache is
    invalidated when the clips, the settings or the weight files change)."""
    stems = list(dict.fromkeys(stems))
    stamp = {
        "fa": _file_stamp(p.weight_path("sound2scene_checkpoint")),
        "fv": _file_stamp(p.weight_path("swav_checkpoint")),
        "fv_size": p.fv_image_size,
        "code": codestamp.stamp(["import avgas.separators"]),  # the code that embeds them
    }

    def rows(i: int, j: int) -> torch.Tensor:
        specs = data.clip_spectrograms(p, cat, stems, name, progress)  # every rank: a collective under torchrun
        a = models.embed_audio(fa, specs[i:j])
        v = models.encode_images(fv, data.load_images(cat, stems[i:j]), p.fv_image_size)
        return torch.stack([a, v])

    both = spec.cached(
        p.cache_dir / f"targets_{name}.pt",
        stems,
        lambda: rows(0, len(stems)),
        rows,
        row_dim=1,
        clip_seconds=p.clip_seconds,
        **stamp,
    )
    return Targets(stems, both[0], both[1])


@dataclass
class SeparatorData:
    """Everything one split contributes to separator training: mixtures and their targets."""

    tuples: pd.DataFrame
    mix: torch.Tensor  # (N, 257, T)
    targets: dict  # {'A': (fg, bg), 'V': (fg, bg)}, each (N, D); K sources: (fg, fg2, ..., bg)

    @property
    def sources(self) -> int:
        return len(self.targets["A"])

    def batch(self, idx, device=None) -> tuple[torch.Tensor, dict]:
        return self.mix[idx].to(device), self.targets_of(idx, device)

    def targets_of(self, idx, device=None) -> dict:
        return {k: tuple(t[idx].to(device) for t in ts) for k, ts in self.targets.items()}


def separator_data(p: Params, cat, tuples: pd.DataFrame, split: str, fa, fv, progress: bool = True) -> SeparatorData:
    t = tuples[tuples["split"] == split].reset_index(drop=True)
    mix = data.mix_spectrograms(p, cat, t, split, progress)
    columns = slots.stem_columns(t)
    tg = frozen_targets(p, cat, [s for c in columns for s in t[c]], split, fa, fv, progress)
    rows = [tg.rows(t[c]) for c in columns]  # per source: (f_A, f_V)
    return SeparatorData(t, mix, {"A": tuple(a for a, _ in rows), "V": tuple(v for _, v in rows)})


# ------------------------------------------------------------------ the trained models' names


def separator_folder(p: Params, alignment: str, replica: int = 0) -> Path:
    """checkpoints/separator_<alignment>/ for the first seed, ..._<alignment>-seed<s>/ for the others."""
    return p.checkpoint_dir / (f"separator_{alignment}" + (f"-seed{p.seed + replica}" if replica else ""))


def replicas(p: Params) -> range:
    """The separator seeds of a run: p.seed, p.seed + 1, ... (`separator_seeds` of them)."""
    return range(p.separator_seeds)


def method_name(alignment: str, replica: int) -> str:
    """How a trained model is named in generated.pt and the metric files: 'A2A' for the first
    seed, 'A2A#1', 'A2A#2' for the others (results.collect pools them over seeds)."""
    name = CONTROL_NAMES.get(alignment, alignment)
    return name + (f"#{replica}" if replica else "")


CONTROL_NAME = "control: f_A fine-tuned on mixtures"  # A2A's control: towards the blend of the f_A targets
CONTROL_V_NAME = "control (A2V): f_A fine-tuned on mixtures towards the f_V blend"
CONTROL_NAMES = {losses.CONTROL: CONTROL_NAME, losses.CONTROL_V: CONTROL_V_NAME}


def trained_models(p: Params) -> list[tuple[str, int]]:
    """(alignment, replica) of every model a run trains: each alignment, then the two controls
    (A2A's and A2V's: f_A fine-tuned on the mixtures towards the f_A / f_V blend), per seed."""
    kinds = list(p.alignments) + (list(losses.CONTROLS) if p.control else [])
    return [(a, r) for r in replicas(p) for a in kinds]


# ------------------------------------------------------------------------- files and inference


def _warn(msg: str) -> None:
    logging.getLogger("avgas").warning(msg)
    print(msg)


def _read_own(path: Path, device="cpu") -> dict | None:
    """One of this run's own checkpoints (written by train_separator), or None when it cannot be
    read (truncated by a full disk, damaged): the caller trains again instead of failing."""
    try:
        ck = torch.load(path, weights_only=False, map_location=device)  # our own file
        if not isinstance(ck, dict) or "model" not in ck:
            raise ValueError("not a separator checkpoint")
        return ck
    except Exception as e:  # noqa: BLE001 - any unreadable file means: train again
        _warn(f"{path} cannot be read ({first_line(e)}); it is ignored and the separator is trained again")
        return None


def load_separator(p: Params, alignment: str, which: str = "best", replica: int = 0) -> torch.nn.Module:
    """The trained separator (best epoch by validation loss, or the last one), or the control."""
    f = separator_folder(p, alignment, replica) / f"{which}.pt"
    if not f.is_file():
        raise FileNotFoundError(
            f"{f}: no trained separator for {alignment}; run notebook 03 (python -m avgas run <params> --only 03)"
        )
    ck = _read_own(f)
    if ck is None:
        raise CheckpointError(
            f"{f}: this run's separator checkpoint is damaged; run notebook 03 again "
            f"(python -m avgas run <params> --only 03), which trains it again"
        )
    model = separator.from_state(ck["model"], ck.get("kind", "Separator"), ck.get("width"), ck.get("sources", 2))
    return model.to(p.torch_device)


def embeddings(p: Params, mix: torch.Tensor, targets: dict | None = None) -> tuple[dict, dict]:
    """The trained models' embeddings of mixed spectrograms: ({separator name: (h_fg, h_bg)},
    {control name: h}), names as method_name gives them. A PIT separator's slots are matched to
    the sources with `targets` (the tuples' f_A / f_V targets), which it then needs."""
    separated, mixed_only = {}, {}
    for a, r in trained_models(p):
        h = separator.separate(load_separator(p, a, replica=r), mix)
        if a in losses.CONTROLS:
            mixed_only[method_name(a, r)] = h[0]
        else:
            if losses.is_pit(a) and targets is None:
                raise ValueError(f"{a}: a PIT separator's slots are matched to the sources; pass the tuples' targets")
            separated[method_name(a, r)] = separator.matched(a, h, targets)
    return separated, mixed_only


def separation_scores(hs: tuple, targets: dict) -> dict:
    """For each slot and each target kind: the share of tuples whose slot is closer to its own
    source's target than to every other source's (the baseline passes f_A(mix) as every slot)."""
    out = {}
    for kind, name in (("A", "f_A"), ("V", "f_V")):
        for prefix, share in zip(slots.prefixes(len(hs)), separator.closer_to_own(hs, targets[kind]), strict=True):
            out[f"{prefix} closer to own ({name})"] = share
    return out

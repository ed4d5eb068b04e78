"""Who sees which data: the synthetic world's pools, kept apart by construction.

A reproduction's numbers are only as good as its instrument, so on the synthetic world the parts
that stand in for pretrained models, the judges, and the method each learn from their own data:

| pool | trains | drawn from |
|------|--------|------------|
| stand-in pool | f_V, G, f_A (Sound2Scene's "pretrained" parts) | its own random stream: single-class clips (sound and image) of every class, and two-class scenes of the **generator pairs** only |
| judge pool: train / val / test | the scene classifier, the detector, CLIP | its own streams: single-class images and two-class scenes of the evaluated pairs; `val` chooses the judges' settings, `test` measures them |
| the run's data: train / val / test | the separator / its model selection / Tables 1-3 | the world's data folder (`world.py`), exactly as VGGSound's would be |

**Evaluated pairs** are Table 4's combinations, the only pairs whose mixtures Tables 1-3 score.
**Generator pairs** are every other (foreground, background) pairing of the same classes: f_V
and G learn what a two-class scene looks like from those, so nothing G learned is a scene (or a
blend of features) of a pair it is later judged on. Every pool is a pure function of the seed
and its stream, so it is the same on every machine, and none shares an image with another
(tests/test_protocol.py checks this by content hash).
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass

import numpy as np
import torch

from avgas import paper, paths, pictures, sounds, world
from avgas.params import Params

# Random streams of the pools; the world's own clips use 4-number seeds, these 5-number ones.
STREAMS = {"stand-in": 301, "generator-val": 302, "judge-train": 401, "judge-val": 402, "judge-test": 403}
JUDGE_PARTS = ("train", "val", "test")


JUDGE_POOL_VERSION = 2  # bump when the judge pool's recipe changes (judge_pool)

# What each stand-in is a function of (the instrument store's key, avgas.instrument): its pool
# (standin_pool: the world's classes and the pool's sizes, drawn with instrument_seed), and
# its own training settings. G and f_A also depend on the f_V they were trained with.
POOL_KEYS = ("clips_per_class", "clip_seconds", "image_size", "combinations", "test_fraction", "scenes_per_combination")
PART_KEYS = {
    "swav_checkpoint": ("fv_image_size", "stand_in_batch", "fv_width_per_group", "fv_steps"),
    "icgan_folder": (
        "fv_image_size",
        "stand_in_batch",
        "g_resolution",
        "g_channels",
        "g_dim_z",
        "g_feature_proj",
        "g_steps",
        "g_lr",
        "g_anchor_weight",
        "g_diversity_weight",
        "g_blend_share",
    ),
    "sound2scene_checkpoint": ("fv_image_size", "stand_in_batch", "fa_width", "fa_epochs"),
}
# Every setting of the stand-ins (validation.json records them beside its scores).
STAND_IN_KEYS = ("seed", "instrument_seed", *POOL_KEYS, *dict.fromkeys(k for ks in PART_KEYS.values() for k in ks))


def evaluated_pairs(p: Params) -> list[tuple[str, ...]]:
    """(foreground, background) pairs whose mixtures are evaluated: the run's combinations and
    its unseen pairings (Params.unseen: tested, never trained on); with `sources` K > 2, the
    K-class groups (foregrounds..., background) of Params.groups."""
    return p.groups() + p.unseen()


def generator_pairs(p: Params) -> list[tuple[str, ...]]:
    """Every other pairing of the run's foregrounds with its backgrounds: what G and f_V may see.
    With `sources` K > 2, also the K-class groups made of such pairings only (a background with
    K-1 foregrounds that are not its combinations, prompts distinct): G learns what a K-class
    scene looks like from those, and no scene it sees holds an evaluated pair."""
    return _generator_groups(p, set(p.unseen()), [p.sources])


def _generator_groups(p: Params, unseen: set, sizes: list[int]) -> list[tuple[str, ...]]:
    combos = p.combination_list()
    fgs = sorted({fg for fg, _ in combos})
    bgs = list(dict.fromkeys(bg for _, bg in combos))
    kept_apart = set(combos) | unseen  # evaluated pairs, unseen pairings included
    pairs = [(fg, bg) for bg in bgs for fg in fgs if (fg, bg) not in kept_apart]
    prompts = paper.prompts()
    word = {c: prompts.get(c, c) for c in (*fgs, *bgs)}  # a class without a prompt is its own word
    groups = []
    for k in sorted(k for k in set(sizes) if k > 2):
        for bg in bgs:
            others = [fg for fg, b in pairs if b == bg]
            for chosen in itertools.combinations(others, k - 1):
                words = [word[c] for c in (*chosen, bg)]
                if len(set(words)) == len(words):
                    groups.append((*chosen, bg))
    return pairs + groups


def stand_in_unseen(p: Params) -> list[tuple[str, str]]:
    """The pairings the stand-ins never see besides the combinations: the run's unseen pairings;
    with `stand_in_sources` set, those of the two-source run of these params (so the stand-ins
    of a two-source run and of its three-source sibling are the same)."""
    if p.stand_in_sources is None or p.sources == 2:
        return p.unseen()
    return p.replace(sources=2).unseen()


def stand_in_groups(p: Params) -> list[tuple[str, ...]]:
    """The groups whose scenes the stand-ins learn from: generator_pairs(p), or with
    `stand_in_sources` the generator pairs and groups of every size listed, every evaluated
    pairing of any of those runs kept apart (one set of stand-ins serves them all)."""
    if p.stand_in_sources is None:
        return generator_pairs(p)
    return _generator_groups(p, set(stand_in_unseen(p)), p.stand_in_sources)


@dataclass
class Pool:
    """True images with their classes; the stand-in pool also holds the single images' sounds."""

    images: torch.Tensor  # (N, S, S, 3) uint8: single-class images first, then scenes
    sets: list  # per image: {class index} or {fg index, bg index}
    classes: list  # class names, indexed by the sets
    boxes: list  # per image: [(class name, (x0, y0, x1, y1))], normalised
    waves: np.ndarray | None = None  # (n_single, samples) float32, for the stand-in pool

    @property
    def labels(self) -> torch.Tensor:
        """(N, C) multi-hot classes."""
        out = torch.zeros(len(self.sets), len(self.classes))
        for i, s in enumerate(self.sets):
            out[i, list(s)] = 1
        return out

    @property
    def n_single(self) -> int:
        return sum(len(s) == 1 for s in self.sets)


def _rng(p: Params, stream: str, ci: int, j: int, what: int) -> np.random.Generator:
    return np.random.default_rng([p.instrument_draw, STREAMS[stream], ci, j, what])


def _loose_box(label: str) -> tuple:
    """A single object's box is known only up to its per-image jitter: the class's widest extent."""
    x0, y0, x1, y1 = pictures.shape_extent(label)
    s = 0.40  # the middle of the drawn half-size range (0.36-0.44 of the frame)
    return tuple(float(np.clip(0.5 + v * s, 0, 1)) for v in (x0, y0, x1, y1))


def _make(p: Params, stream: str, per_class: int, pairs: list, per_pair: int, audio: bool) -> Pool:
    names = paper.background_classes() + paper.foreground_classes()  # stable indices for the streams
    classes = world.classes(p)
    idx = {c: i for i, c in enumerate(classes)}
    bgs = set(paper.background_classes())
    images, sets, boxes, waves = [], [], [], []
    for label in classes:
        ci = names.index(label)
        for j in range(per_class):
            images.append(np.asarray(pictures.draw(label, _rng(p, stream, ci, j, 2), p.image_size)))
            sets.append({idx[label]})
            boxes.append([(label, (0.0, 0.0, 1.0, 1.0) if label in bgs else _loose_box(label))])
            if audio:
                level = sounds.natural_level(_rng(p, stream, ci, j, 0))
                waves.append(sounds.render(label, _rng(p, stream, ci, j, 1), p.clip_seconds, level))
    for *fgs, bg in pairs:  # a pair (fg, bg), or a K-class group (fg, fg2, ..., bg)
        pi = 1000 + names.index(fgs[0]) * 100 + names.index(bg)
        for n, fg in enumerate(fgs[1:], start=1):  # a group's own stream (a pair's as it always was)
            pi += 10**5 * 100 ** (n - 1) * (names.index(fg) + 1)
        for j in range(per_pair):
            img, fg_boxes = pictures.composite_many(fgs, bg, _rng(p, stream, pi, j, 3), p.image_size, with_box=True)
            images.append(np.asarray(img))
            sets.append({idx[c] for c in (*fgs, bg)})
            boxes.append([*zip(fgs, fg_boxes), (bg, (0.0, 0.0, 1.0, 1.0))])
    return Pool(torch.from_numpy(np.stack(images)), sets, classes, boxes, np.stack(waves) if audio else None)


def _standin_per_pair(p: Params) -> int:
    """Scenes per generator group: as many scenes in all as the evaluated groups would have had
    (with `stand_in_sources`, those of its smallest size: the same budget for every run it serves)."""
    budget = p if p.stand_in_sources is None else p.replace(sources=min(p.stand_in_sources))
    pairs, total = stand_in_groups(p), p.scenes_per_combination * len(budget.groups())
    return math.ceil(total / len(pairs)) if pairs and total else 0


def _judge_counts(p: Params, part: str) -> tuple[int, int]:
    """(single-class images per class, scenes per evaluated pair) of a judge pool part."""
    if part == "train":
        return _train_clips_per_class(p), p.scenes_per_combination
    return max(4, p.clips_per_class // 8), max(5, p.scenes_per_combination // 4)


def _train_clips_per_class(p: Params) -> int:
    """As many clips per class as a class of the run's data has for training."""
    return max(2, p.clips_per_class - max(1, round(p.clips_per_class * p.test_fraction)))


def standin_pool(p: Params) -> Pool:
    """The stand-ins' own pretraining data: single-class clips of every class and as many
    two-class scenes as the evaluated pairs would have had, spread over the generator pairs."""
    return _make(p, "stand-in", _train_clips_per_class(p), stand_in_groups(p), _standin_per_pair(p), audio=True)


def generator_val_pool(p: Params) -> Pool:
    """G's own validation images (avgas.selection chooses g_steps and g_blend_share on them): true
    single-class images and two-class scenes of the *generator pairs* from a stream of their own,
    never trained on, and no evaluated pair among them (G's settings are chosen on the kind of
    scene G learns from, never on a pair that Tables 1-3 score)."""
    n_single, per_pair = _judge_counts(p, "val")
    pairs = generator_pairs(p)
    per_gen = math.ceil(per_pair * len(p.groups()) / len(pairs)) if pairs else 0
    return _make(p, "generator-val", n_single, pairs, per_gen, audio=False)


def judge_pool(p: Params, part: str) -> Pool:
    """The judges' own true images: `train` to learn, `val` to choose their settings, `test` to
    measure their recall and false-success rate. Scenes are of the evaluated pairs: a judge must
    recognise what it will be asked about, from images no generator was trained on."""
    if part not in JUDGE_PARTS:
        raise ValueError(f"judge pool part {part!r}: one of {JUDGE_PARTS}")
    n_single, per_pair = _judge_counts(p, part)
    scenes = evaluated_pairs(p) + (subset_groups(p) if part != "train" else [])
    return _make(p, f"judge-{part}", n_single, scenes, per_pair, audio=False)


def judge_pool_settings(p: Params) -> dict:
    """What the judge pool is a function of: the instrument draw, the world's classes and image
    size, the pool's sizes and the evaluated groups (part of every judge's instrument-store key)."""
    return {
        "draw": p.instrument_draw,
        "classes": world.classes(p),
        **{k: getattr(p, k) for k in ("image_size", "clips_per_class", "test_fraction", "scenes_per_combination")},
        "evaluated": [list(g) for g in evaluated_pairs(p)],
        "pool": JUDGE_POOL_VERSION,
    }


def clip_train_pool(p: Params) -> Pool:
    """CLIP's training images, with no co-occurrence of an evaluated pair: the judge pool's
    single-class training images, and two-class scenes of the *generator pairs* (as many scenes in
    all as the evaluated pairs have in `judge_pool(p, "train")`), drawn from the judges' own
    training stream. A ranking judge trained on scenes of the evaluated pairs learns which classes
    appear together, so a one-class image would rank its partner second (a false R@2* success the
    judge did not earn); here no evaluated pair is ever seen together. Validation and test are the
    judge pool's, evaluated pairs included: what the judge will be asked about."""
    n_single, per_pair = _judge_counts(p, "train")
    pairs = generator_pairs(p)
    total = per_pair * len(evaluated_pairs(p))
    per_gen = math.ceil(total / len(pairs)) if pairs and total else 0
    return _make(p, "judge-train", n_single, pairs, per_gen, audio=False)


def subset_groups(p: Params) -> list[tuple[str, ...]]:
    """With K > 2 sources: the (K-1)-class groups inside the evaluated ones (one foreground left
    out, the background kept). Their true scenes join the judges' validation and test images: an
    image that shows all but one class of a group must not be scored as showing all of them (the
    false success that would inflate CRS_K and R@K*), so the threshold is chosen against it and
    the held-out check measures it. For two sources the subsets are the single-class images."""
    if p.sources == 2:
        return []
    out = {}
    for *fgs, bg in p.groups():
        for left_out in range(len(fgs)):
            out[(*fgs[:left_out], *fgs[left_out + 1 :], bg)] = None
    return list(out)


def record(p: Params) -> dict:
    """The protocol of a synthetic run, for results.json: which pairs are evaluated, which the
    generator saw (disjoint), and the size of every pool."""
    standin_pairs = stand_in_groups(p)
    n_classes = len(world.classes(p))
    judge = {
        part: {
            "single-class images": n_classes * _judge_counts(p, part)[0],
            "two-class scenes" if p.sources == 2 else f"{p.sources}-class scenes": len(evaluated_pairs(p))
            * _judge_counts(p, part)[1],
            **(
                {
                    f"{p.sources - 1}-class scenes (false-success check)": len(subset_groups(p))
                    * _judge_counts(p, part)[1]
                }
                if p.sources > 2 and part != "train"
                else {}
            ),
        }
        for part in JUDGE_PARTS
    }
    return {
        "sources": p.sources,
        "evaluated_pairs": [" + ".join(g) for g in evaluated_pairs(p)],
        "unseen_pairs": [" + ".join(g) for g in p.unseen()],
        "generator_pairs": [" + ".join(g) for g in standin_pairs],
        "pools": {
            "stand-ins (f_V, G, f_A)": {
                "single-class clips": n_classes * _train_clips_per_class(p),
                "two-class scenes" if p.sources == 2 else f"scenes of 2 to {p.sources} classes": _standin_per_pair(p)
                * len(standin_pairs),
            },
            **{f"judges ({part})": v for part, v in judge.items()},
            "run data": {
                "clips per class": p.clips_per_class,
                "train/val/test tuples": [p.train_tuples, p.val_tuples, p.test_tuples],
            },
        },
        "g_blend_share": p.g_blend_share,
    }


def save(p: Params) -> dict:
    """Write the protocol record to <run>/protocol.json (results.json carries it); returns it."""
    rec = record(p)
    paths.atomic_write_text(p.folder.protocol, json.dumps(rec, indent=1))
    return rec

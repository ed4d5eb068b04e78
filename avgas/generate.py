"""A run's conditioning vectors and images: which embedding conditions G for each (task, method) of
Tables 1-3, the images of a split under torchrun, and the file that holds them (generated.pt).

The paper's generation itself, G(z, h_j) and Eq. 4's blend, is avgas.core.generation.
"""

from __future__ import annotations

import torch

from avgas import data, ranks, separators, slots
from avgas.core import generation
from avgas.core.separator import embed_mix
from avgas.paths import torch_save_atomic as _save


def sample(G, feats: torch.Tensor, z: torch.Tensor | None = None, seed: int = 0, batch: int = 128, shard: bool = False):
    """core.generation.sample; `shard` (under torchrun): each rank draws its slice of the rows and
    every rank gets all the images back in order — the same images, as z is drawn for all rows
    before slicing."""
    w = ranks.world()
    if not (shard and w.parallel):
        return generation.sample(G, feats, z, seed, batch)
    if z is None:
        z = generation.noise(len(feats), G.dim_z, seed)
    mine = ranks.split(torch.arange(len(feats)), w)
    return ranks.gather(generation.sample(G, feats[mine], z[mine], batch=batch), grad=False)


TASKS = tuple(slots.tasks(2))  # mixed, separated_foreground, separated_background: the paper's


REFERENCE_IMAGE = "reference: true image features"
REFERENCE_AUDIO = "reference: true audio features"


def embeddings_for(
    tuples_n: int, baseline: torch.Tensor, separated: dict, references: dict, lam: float, mixed_only: dict | None = None
) -> dict:
    """The conditioning vectors of every (task, method) of Tables 1-3.

    baseline: f_A(mix); separated: alignment -> (h_fg, h_bg) (K slots for K sources: one
    separated task per slot, sources.tasks); references: name -> (fg, bg)
    features of the *true single sources* instead of a separator's outputs — f_V of the true
    images (what G is conditioned on in IC-GAN; the A2V target) and f_A of the true single clips
    (the A2A target). `mixed_only`: name -> one embedding per mix (the control), for Table 1.
    The references show what the generator and the judges allow when separation is
    perfect, not a bound any method must stay under. Sound2Scene has one embedding for the mix:
    its one image is the mixed image (Table 1) and is also scored against each source in turn in
    Tables 2-3 (the question separation answers: does one image of the mix show each source?)."""
    tasks = slots.tasks(len(next(iter(references.values()))))
    out = {(task, "Sound2Scene"): baseline for task in tasks}
    for name, h in (mixed_only or {}).items():  # one embedding of the mix (the control): Table 1 only
        out[("mixed", name)] = h
    for name, hs in {**separated, **references}.items():
        out[("mixed", name)] = generation.mixed_condition(hs, lam)  # Eq. 4
        for task, h in zip(tasks[1:], hs, strict=True):
            out[(task, name)] = h
    assert all(len(v) == tuples_n for v in out.values())
    return out


def conditions(p, d: separators.SeparatorData, fa) -> tuple[dict, dict]:
    """For one split's tuples (a separators.SeparatorData): the conditioning vectors of every (task,
    method) of Tables 1-3 (see embeddings_for), and the separators' (h_fg, h_bg) by method name."""
    separated, controls = separators.embeddings(p, d.mix, d.targets)  # every alignment x seed; the control's one
    references = {REFERENCE_IMAGE: d.targets["V"], REFERENCE_AUDIO: d.targets["A"]}
    baseline = embed_mix(fa, d.mix)
    return embeddings_for(len(d.mix), baseline, separated, references, p.mix_lambda, controls), separated


def images_for(G, embeddings: dict, seed: int, shard: bool = False) -> dict:
    """uint8 (N, R, R, 3) images per (task, method) (core.generation.images_for: the same z_i for
    tuple i under every method). `shard`: split over torchrun's ranks."""
    return generation.images_for(G, embeddings, seed, lambda G, h, z: sample(G, h, z, shard=shard))


def save(path, images: dict, tuple_ids: list) -> None:
    """All generated images of a run in one file: {'tuple_id': [...], 'images': {'task/method': uint8}}."""
    _save({"tuple_id": list(tuple_ids), "images": {f"{t}/{m}": v for (t, m), v in images.items()}}, path)


def load(path) -> tuple[dict, list]:
    d = torch.load(path, weights_only=True)
    return {tuple(k.split("/", 1)): v for k, v in d["images"].items()}, d["tuple_id"]


def load_run(p, cat):
    """The run's held-out tuples and the images notebook 04 generated for them:
    (test tuples, {(task, method): uint8 images}, image size)."""
    f = p.folder.generated
    if not f.is_file():
        raise FileNotFoundError(
            f"{f}: no generated images; run notebook 04 first (python -m avgas run <params> --only 04)"
        )
    tuples = data.make_tuples(cat, p)
    test = tuples[tuples["split"] == "test"].reset_index(drop=True)
    images, ids = load(f)
    if ids != list(test["tuple_id"]):
        raise ValueError(f"{f} was generated for other test tuples; run notebook 04 again")
    return test, images, next(iter(images.values())).shape[1]

"""Images from embeddings: G(z, h), the way Sound2Scene and AV-GAS sample.

Embeddings are L2-normalised before the generator (IC-GAN's instance features are unit vectors);
z ~ N(0, 1) without truncation, as Sound2Scene samples; outputs are clamped to [-1, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from avgas import distributed, models, slots


def noise(n: int, dim_z: int, seed: int) -> torch.Tensor:
    return torch.randn(n, dim_z, generator=torch.Generator().manual_seed(seed))


def sample(
    G: models.Generator,
    feats: torch.Tensor,
    z: torch.Tensor | None = None,
    seed: int = 0,
    batch: int = 128,
    shard: bool = False,
) -> torch.Tensor:
    """Images (N, 3, R, R) in [-1, 1] from unit features, z ~ N(0, 1) as Sound2Scene samples.
    `shard` (under torchrun): each rank draws its slice of the rows and every rank gets all the
    images back in order — the same images, as z is drawn for all rows before slicing."""
    G.eval()
    device = next(G.parameters()).device
    if z is None:
        z = noise(len(feats), G.dim_z, seed)  # drawn on the CPU: the same images on any device
    w = distributed.world()
    if shard and w.parallel:
        mine = distributed.split(torch.arange(len(feats)), w)
        return distributed.gather(sample(G, feats[mine], z[mine], batch=batch), grad=False)
    out = [torch.empty(0, 3, G.resolution, G.resolution)]  # a rank's slice may be empty
    with torch.no_grad():
        for i in range(0, len(feats), batch):
            h = F.normalize(feats[i : i + batch].to(device), dim=1)
            out.append(G(z[i : i + batch].to(device), None, h).clamp(-1, 1).cpu())
    return torch.cat(out)


def unit(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x, dim=1)


def blend(h_fg: torch.Tensor, h_bg: torch.Tensor, lam: float) -> torch.Tensor:
    """lambda * h_fg + (1 - lambda) * h_bg of unit embeddings, renormalised (what G expects)."""
    return unit(lam * unit(h_fg) + (1 - lam) * unit(h_bg))


def mixed_condition(hs: tuple, lam: float) -> torch.Tensor:
    """The condition of the mixed image: lambda h_fg + (1 - lambda) h_bg for the paper's two
    slots; with K slots, their equal-weight blend (1/K each), renormalised."""
    if len(hs) == 2:
        return blend(*hs, lam)
    return unit(sum(unit(h) for h in hs) / len(hs))


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
        out[("mixed", name)] = mixed_condition(hs, lam)
        for task, h in zip(tasks[1:], hs, strict=True):
            out[(task, name)] = h
    assert all(len(v) == tuples_n for v in out.values())
    return out


def conditions(p, d, fa) -> tuple[dict, dict]:
    """For one split's tuples (a train.SeparatorData): the conditioning vectors of every (task,
    method) of Tables 1-3 (see embeddings_for), and the separators' (h_fg, h_bg) by method name."""
    from avgas import train

    separated, controls = train.embeddings(p, d.mix, d.targets)  # every alignment x seed; the control's one
    references = {REFERENCE_IMAGE: d.targets["V"], REFERENCE_AUDIO: d.targets["A"]}
    baseline = train.embed_mix(fa, d.mix)
    return embeddings_for(len(d.mix), baseline, separated, references, p.mix_lambda, controls), separated


def images_for(G, embeddings: dict, seed: int, shard: bool = False) -> dict:
    """uint8 (N, R, R, 3) images per (task, method). Tuple i gets the same noise z_i under every
    method, so the methods are compared on the same draws. `shard`: split over torchrun's ranks."""
    from avgas.models import from_unit

    n = len(next(iter(embeddings.values())))
    z = noise(n, G.dim_z, seed)
    return {key: from_unit(sample(G, h, z, shard=shard)) for key, h in embeddings.items()}


def save(path, images: dict, tuple_ids: list) -> None:
    """All generated images of a run in one file: {'tuple_id': [...], 'images': {'task/method': uint8}}."""
    from avgas.paths import torch_save_atomic as _save

    _save({"tuple_id": list(tuple_ids), "images": {f"{t}/{m}": v for (t, m), v in images.items()}}, path)


def load(path) -> tuple[dict, list]:
    d = torch.load(path, weights_only=True)
    return {tuple(k.split("/", 1)): v for k, v in d["images"].items()}, d["tuple_id"]


def lambda_sweep(G, h_fg: torch.Tensor, h_bg: torch.Tensor, lambdas, seed: int) -> torch.Tensor:
    """(len(lambdas), N, R, R, 3) images of G(z, lambda h_fg + (1 - lambda) h_bg), same z throughout."""
    from avgas.models import from_unit

    z = noise(len(h_fg), G.dim_z, seed)
    return torch.stack([from_unit(sample(G, blend(h_fg, h_bg, lam), z)) for lam in lambdas])


def load_run(p, cat):
    """The run's held-out tuples and the images notebook 04 generated for them:
    (test tuples, {(task, method): uint8 images}, image size)."""
    from avgas import data

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

"""`python -m avgas plan PARAMS [--gpu a100x1,h100x4]`: what a run will need, before asking for a GPU.

Without touching a GPU (and without reading a weight file's tensors), it tells:

- the clips found per class and per combination (the prepared data when there is some, else
  VGGSound's csv against the video folder and the archives read so far), and the tuples they give;
- the disk the prepared clips and the run's caches will take;
- per stage, its FLOPs and its GPU memory at the configured batch, and the GPU hours on the
  devices named with ``--gpu``, with every assumption printed.

FLOPs come from a pass of each network on PyTorch's meta device under
``torch.utils.flop_counter.FlopCounterMode`` (shapes only: no memory, no arithmetic), and the
activation memory of training from the tensors that pass saves for backward; nothing is typed in
by hand except the devices' peak rates and the utilisation assumed of them (printed). The numbers
go to ``<run>/plan.json`` too.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

import pandas as pd
import torch
import torchvision
from torch.utils.flop_counter import FlopCounterMode

from avgas import checkpoints, data, models, paper, paths, spectrogram, vggsound, world
from avgas.data import DataError
from avgas.judges import clip
from avgas.params import Params

# dense peak TFLOP/s (bf16 tensor cores, TF32 tensor cores) and memory (GiB), from the vendors' sheets
DEVICES = {
    "v100": (125.0, 15.7, 32),  # no TF32 and no bf16: fp16 tensor cores / fp32
    "t4": (65.0, 8.1, 16),
    "a10": (125.0, 62.5, 24),
    "l40s": (362.0, 183.0, 48),
    "a100": (312.0, 156.0, 80),
    "a100-40": (312.0, 156.0, 40),
    "h100": (989.0, 495.0, 80),
    "h200": (989.0, 495.0, 141),
    "rtx4090": (165.0, 82.6, 24),
}
UTILISATION = 0.30  # share of the peak a ResNet-18 on spectrograms reaches at batch 16 (an assumption)
SCALING = 0.90  # data-parallel efficiency per GPU beyond the first (DDP, one node; an assumption)
JPEG_BYTES = 25_000  # a 360p VGGSound frame as JPEG (an assumption, measured when clips are prepared)
PNG_BYTES = 30_000  # one generated 128 px image as PNG (an assumption)
DEFAULT_GPUS = "a100x1,h100x1,h100x4"
INFERENCE_BATCH = 128  # models.embed_audio / generate.sample batches


class PlanError(DataError):
    """The plan cannot be made: an input it needs is missing (named with its params key)."""


# ------------------------------------------------------------------------------ networks on meta


@dataclass
class Cost:
    flops: float  # per item (per tuple, clip or image)
    params: int
    saved_bytes: float  # activation bytes saved for backward, per item (training only)
    peak_bytes: float  # the largest activation of one pass, per item


def measure(net_fn, input_fn, batch: int = 2, train: bool = False) -> Cost:
    """FLOPs (forward, + backward when `train`) and activation bytes of one item, from a pass of a
    batch on the meta device under FlopCounterMode."""
    with torch.device("meta"):
        net = net_fn()
        x = input_fn(batch)
    net.train(train)
    saved = [0]
    peak = [0]

    def pack(t):
        saved[0] += t.numel() * t.element_size()
        return t

    def watch(_m, _i, out):
        for o in out if isinstance(out, tuple) else (out,):
            if isinstance(o, torch.Tensor):
                peak[0] = max(peak[0], o.numel() * o.element_size())

    hooks = [m.register_forward_hook(watch) for m in net.modules()]
    try:
        with FlopCounterMode(display=False) as fc:
            if train:
                with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                    out = net(*x) if isinstance(x, tuple) else net(x)
                loss = sum(o.float().sum() for o in (out if isinstance(out, tuple) else (out,)))
                loss.backward()
            else:
                with torch.no_grad():
                    net(*x) if isinstance(x, tuple) else net(x)
    finally:
        for h in hooks:
            h.remove()
    n_params = sum(t.numel() for t in net.parameters())
    return Cost(fc.get_total_flops() / batch, n_params, saved[0] / batch, peak[0] / batch)


def separator_cost(p: Params, batch: int = 2) -> Cost:
    """The separator (f_AV) at the params' width, sources and clip length: forward + backward."""
    frames = spectrogram.n_frames(p.clip_seconds)
    return measure(
        lambda: models.Separator(width=p.separator_width, sources=p.sources),
        lambda b: torch.empty(b, 1, 257, frames),
        batch,
        train=True,
    )


def _fa_width(p: Params) -> float:
    return 1.0 if p.world == "vggsound" else p.fa_width


def _generator_config(p: Params) -> dict:
    """G's config: the IC-GAN folder's (its small state_dict_best file), else the released 128 px one;
    the synthetic world's from its params."""
    if p.world != "vggsound":
        return checkpoints.icgan_config(
            G_ch=p.g_channels, dim_z=p.g_dim_z, resolution=p.g_resolution, G_attn="0", shared_dim_feat=p.g_feature_proj
        )
    try:
        return checkpoints.read_icgan_state(p.weight_path("icgan_folder"))[1]["config"]
    except checkpoints.CheckpointError:  # not there yet: the released generator's architecture
        return checkpoints.icgan_config()


def _clip_model(p: Params):
    """A builder of the run's OpenCLIP architecture (clip_model) on the meta device."""
    return lambda: clip.on_meta(p.clip_model)


def stage_costs(p: Params) -> dict[str, Cost]:
    """The networks of each stage, measured on the meta device."""
    cfg = _generator_config(p)
    frames = spectrogram.n_frames(p.clip_seconds)
    n_slots = len(models.G_ARCH[int(cfg["resolution"])][0]) + 1
    dim_z = int(cfg["dim_z"]) // n_slots * n_slots
    costs = {
        "f_A (frozen targets)": measure(
            lambda: models.AudioEncoder(width=_fa_width(p)),
            lambda b: torch.empty(b, 1, 257, frames),
        ),
        "f_V (frozen targets)": measure(
            lambda: models.image_encoder(64 if p.world == "vggsound" else p.fv_width_per_group),
            lambda b: torch.empty(b, 3, p.fv_image_size, p.fv_image_size),
        ),
        "separator training": separator_cost(p),
        "separator inference": measure(
            lambda: models.Separator(width=p.separator_width, sources=p.sources),
            lambda b: torch.empty(b, 1, 257, frames),
        ),
        "G (generation)": measure(
            lambda: models.Generator(cfg),
            lambda b: (torch.empty(b, dim_z), None, torch.empty(b, int(cfg.get("feature_dim", models.FEATURE_DIM)))),
        ),
    }
    if p.world == "vggsound":
        costs["Inception (FID/IS)"] = measure(
            lambda: torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False),
            lambda b: torch.empty(b, 3, 299, 299),
        )
        make = _clip_model(p)
        costs["CLIP (R@K)"] = measure(lambda: make().visual, lambda b: torch.empty(b, 3, 224, 224))
    return costs


# ------------------------------------------------------------------------------------ the clips


def clip_counts(p: Params) -> tuple[pd.DataFrame, str]:
    """Clips per class and csv split: the prepared ones, or else the csv's rows with a video found
    in the folder or in the archives read so far (an archive not read yet counts as holding all)."""
    wanted = world.classes(p)
    if p.metadata_path.is_file():
        meta = data.read_metadata(p.metadata_path)
        meta = meta[meta["label"].isin(wanted)]
        found = {(r.label, r.split): 0 for r in meta.itertuples()}
        for r in meta.itertuples():
            found[(r.label, r.split)] += 1
        source = f"prepared clips ({p.metadata_path})"
        rows = {c: {"train": found.get((c, "train"), 0), "test": found.get((c, "test"), 0)} for c in wanted}
    elif p.world == "vggsound":
        if not p.vggsound_csv or not paths.resolve(p.vggsound_csv).is_file():
            raise PlanError(
                f"neither prepared clips ({p.metadata_path}, params key 'metadata_csv') nor VGGSound's csv "
                f"({p.vggsound_csv!r}, params key 'vggsound_csv') found: the plan counts the clips from one of them"
            )
        scan = vggsound.scan_csv(paths.resolve(p.vggsound_csv))
        video_dir = paths.resolve(p.video_dir) if p.video_dir else None
        names = set()
        unread = 0
        if video_dir and video_dir.is_dir():
            names = {s for e in os.scandir(video_dir) if (s := vggsound.video_stem(e.name))}
            state = {}
            f = p.data.archives
            if f.is_file():
                try:
                    state = json.loads(f.read_text())
                except ValueError:
                    state = {}
            for a in vggsound.archives_in(video_dir):
                if (state.get(a.name) or {}).get("complete"):
                    names |= set(state[a.name]["members"])
                else:
                    unread += 1
        rows = {c: {"train": 0, "test": 0} for c in wanted}
        for r in scan.rows:
            if r.label in rows and (unread or any(s in names for s in vggsound.candidate_stems(r.ytid, r.start))):
                rows[r.label][r.split] += 1
        source = f"VGGSound's csv and {video_dir}" + (
            f" ({unread} archives not read yet: their clips are counted as present)" if unread else ""
        )
    else:
        n_test = max(1, round(p.clips_per_class * p.test_fraction))
        rows = {c: {"train": p.clips_per_class - n_test, "test": n_test} for c in wanted}
        source = "the synthetic world's params (clips_per_class, test_fraction)"
    fg, bg = set(paper.foreground_classes()), set(paper.background_classes())
    table = pd.DataFrame(rows).T.reindex(wanted)
    table.insert(0, "role", ["background" if c in bg else "foreground" if c in fg else "-" for c in wanted])
    val = (table["train"] * p.val_fraction).round().clip(lower=(table["train"] > 0).astype(int))
    table["train (after val)"] = table["train"] - val
    table["val"] = val
    table.index.name = "class"
    return table, source


def tuple_counts(p: Params, clips: pd.DataFrame) -> pd.DataFrame:
    """Per source group: the distinct pairings its clips allow per split, and the tuples asked for."""
    groups = p.groups()
    want = {
        s: math.ceil(n / len(groups))
        for s, n in (("train", p.train_tuples), ("val", p.val_tuples), ("test", p.test_tuples))
    }
    cols = {"train": "train (after val)", "val": "val", "test": "test"}
    rows = []
    for g in groups:
        row = {"group": " + ".join(g)}
        for split, col in cols.items():
            n = math.prod(int(clips.loc[c, col]) for c in g)
            row[f"{split}: pairings"] = n
            row[f"{split}: tuples"] = want[split]
        rows.append(row)
    return pd.DataFrame(rows).set_index("group")


# --------------------------------------------------------------------------------------- the plan


def parse_gpus(spec: str) -> list[tuple[str, int]]:
    """'a100x1,h100x4' -> [('a100', 1), ('h100', 4)]; a name not known is refused with the list."""
    out = []
    for part in [s.strip().lower() for s in spec.split(",") if s.strip()]:
        name, _, n = part.partition("x")
        count_ok = not n or (n.isdigit() and int(n) >= 1)  # DEVICE alone means one
        if part.count("x") > 1 or name not in DEVICES or not count_ok:
            raise PlanError(f"--gpu {spec!r}: {part!r} is not DEVICExN with a device of {', '.join(DEVICES)}")
        out.append((name, int(n or 1)))
    return out


def _hours(flops: float, gpu: str, n: int, amp: bool) -> float:
    bf16, tf32, _ = DEVICES[gpu]
    rate = (bf16 if amp else tf32) * 1e12 * UTILISATION * n * (1 if n == 1 else SCALING)
    return flops / rate / 3600


def make(p: Params, gpus: str = DEFAULT_GPUS) -> dict:
    """The plan as a dict (what plan.json holds); the tables are rebuilt from it by `tables`."""
    devices = parse_gpus(gpus)
    clips, source = clip_counts(p)
    tuples = tuple_counts(p, clips)
    costs = stage_costs(p)
    n_clips = int(clips[["train", "test"]].to_numpy().sum())
    frames = spectrogram.n_frames(p.clip_seconds)
    seeds = p.separator_seeds
    trained = len(p.alignments) * seeds + (1 if p.control else 0)
    k = p.sources
    # images generated per test tuple: each trained model's K separated + 1 mixed, Sound2Scene's 1,
    # and the two references' K + 1
    images_per_tuple = trained * (k + 1) + 1 + 2 * (k + 1)
    test_images = p.test_tuples * images_per_tuple
    wav = 44 + 2 * spectrogram.n_samples(min(p.clip_seconds, 10.0))
    jpg = JPEG_BYTES
    images = sorted(p.data.images.glob("*.jpg"))[:200] if p.data.images.is_dir() else []
    if images:
        jpg = sum(f.stat().st_size for f in images) / len(images)
    spec_bytes = 257 * frames * 4
    distinct = min(n_clips, k * (p.train_tuples + p.val_tuples + p.test_tuples))
    disk = {
        "prepared clips (wav + jpg)": n_clips * (wav + jpg),
        "spectrogram caches (clips)": distinct * spec_bytes,
        "spectrogram caches (mixtures)": (p.train_tuples + p.val_tuples + p.test_tuples) * spec_bytes,
        "frozen-target caches": distinct * 2 * models.FEATURE_DIM * 4,
        "separator checkpoints (best, last + Adam)": trained * 4 * costs["separator training"].params * 4,
        "generated test images": test_images * PNG_BYTES,
    }
    sep = costs["separator training"]
    steps_items = p.epochs * p.train_tuples
    stages = {
        "frozen targets: f_A on the clips": (costs["f_A (frozen targets)"], distinct, INFERENCE_BATCH, False),
        "frozen targets: f_V on the frames": (costs["f_V (frozen targets)"], distinct, INFERENCE_BATCH, False),
        "separator training (all alignments and seeds)": (sep, trained * steps_items, p.batch_size, p.amp),
        "separator validation passes": (
            costs["separator inference"],
            trained * p.epochs * p.val_tuples,
            p.batch_size,
            False,
        ),
        "generation: G on every test tuple": (costs["G (generation)"], test_images, INFERENCE_BATCH, False),
    }
    if "Inception (FID/IS)" in costs:
        stages["judges: Inception (FID/IS)"] = (costs["Inception (FID/IS)"], test_images, INFERENCE_BATCH, False)
        stages["judges: CLIP image tower (R@K)"] = (costs["CLIP (R@K)"], test_images, INFERENCE_BATCH, False)
    out_stages = {}
    for name, (c, items, batch, amp) in stages.items():
        if "training" in name:  # fp32 weights, gradients and two Adam moments; saved activations
            memory = 16 * c.params + batch * c.saved_bytes * (0.5 if amp else 1.0)
        else:
            memory = 4 * c.params + batch * 3 * c.peak_bytes  # an input, an output and a workspace
        flops = c.flops * items
        out_stages[name] = {
            "items": int(items),
            "GFLOP per item": c.flops / 1e9,
            "FLOPs": flops,
            "batch": batch,
            "GPU memory (GiB)": memory / 2**30,
            "parameters (M)": c.params / 1e6,
            **{f"{g}x{n} (h)": _hours(flops, g, n, amp) for g, n in devices},
        }
    fits = {
        f"{g}x{n}": all(s["GPU memory (GiB)"] < DEVICES[g][2] * 0.9 for s in out_stages.values()) for g, n in devices
    }
    return {
        "run": p.name,
        "clips source": source,
        "clips": clips.reset_index().to_dict("records"),
        "tuples": tuples.reset_index().to_dict("records"),
        "disk (GB)": {k_: v / 1e9 for k_, v in disk.items()},
        "stages": out_stages,
        "total GPU hours": {f"{g}x{n}": sum(s[f"{g}x{n} (h)"] for s in out_stages.values()) for g, n in devices},
        "fits in memory": fits,
        "assumptions": [
            f"FLOPs and activation bytes from a pass on the meta device under torch.utils.flop_counter "
            f"(spectrograms of {257} x {frames}; {p.sources} sources; separator width {p.separator_width})",
            f"GPU hours = FLOPs / (peak x {UTILISATION:.0%} utilisation x GPUs x {SCALING:.0%} data-parallel "
            "efficiency beyond one GPU); peak: bf16 tensor cores with amp: true (training only), TF32 otherwise",
            "training memory: fp32 weights, gradients and two Adam moments (16 bytes a parameter) + the "
            "activations saved for backward at the batch (halved with amp); inference: weights + 3 activations",
            f"a frame {jpg / 1e3:.0f} kB ({'measured on the prepared jpgs' if images else 'assumed'}); a generated "
            f"image {PNG_BYTES / 1e3:.0f} kB (assumed); spectrograms cached in float32",
            f"{images_per_tuple} images per test tuple: every trained separator's {k} separated + 1 mixed, "
            f"Sound2Scene's, and the two references'; the detector (YOLO-World) is not counted",
            "spectrograms and data loading on the CPU (not counted)",
        ],
    }


def tables(plan: dict) -> str:
    """The plan in words and tables, as `python -m avgas plan` prints it."""
    clips = pd.DataFrame(plan["clips"]).set_index("class")
    tuples = pd.DataFrame(plan["tuples"]).set_index("group")
    stages = pd.DataFrame(plan["stages"]).T
    stages["FLOPs"] = stages["FLOPs"].map(lambda v: f"{v:.2e}")
    for c in ("items", "batch"):
        stages[c] = stages[c].map(lambda v: f"{int(v)}")
    for c in stages.columns:
        if c.endswith("(h)") or c in ("GFLOP per item", "GPU memory (GiB)", "parameters (M)"):
            stages[c] = stages[c].map(lambda v: f"{v:.3g}")
    disk = pd.Series(plan["disk (GB)"]).map(lambda v: f"{v:.3g}")
    lines = [
        f"plan for run '{plan['run']}'",
        f"\nclips per class (from {plan['clips source']}):\n{clips.to_string()}",
        f"\ntuples per source group (distinct pairings available, tuples asked for):\n{tuples.to_string()}",
        f"\ndisk (GB):\n{disk.to_string()}\n  total: {sum(plan['disk (GB)'].values()):.3g} GB",
        f"\nstages:\n{stages.to_string()}",
        "\ntotal GPU hours: " + ", ".join(f"{g}: {h:.3g} h" for g, h in plan["total GPU hours"].items()),
        "fits in one GPU's memory: "
        + ", ".join(f"{g}: {'yes' if ok else 'NO'}" for g, ok in plan["fits in memory"].items()),
        "\nassumptions:\n" + "\n".join(f"- {a}" for a in plan["assumptions"]),
    ]
    return "\n".join(lines)


def write(p: Params, plan: dict) -> os.PathLike:
    """plan.json in the run folder (atomically)."""
    f = p.folder.plan
    f.parent.mkdir(parents=True, exist_ok=True)
    paths.atomic_write_text(f, json.dumps(plan, indent=1, default=float))
    return f

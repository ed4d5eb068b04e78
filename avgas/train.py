"""Training the audio-visual separator f_AV (paper Section 3.2 and 4.1).

The frozen targets (f_A of each single clip, f_V of each image) are computed once and cached
(avgas.separators), so an epoch costs only the separator; the loss is avgas.core's (Eq. 2-3). Every epoch ends with a validation loss on held-out tuples and
an atomic checkpoint (`last.pt`); the epoch with the lowest validation loss is kept (`best.pt`).
A killed run continues from `last.pt` with `resume: true` and ends with the same weights as an
uninterrupted one: the shuffling of epoch e depends only on (seed, e), and the model, optimiser
and history are all in the checkpoint.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import logging
import multiprocessing as mp
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from avgas import checkpoints, data, distributed, instrument, models, paths, world
from avgas import params as params_mod
from avgas import progress as progress_mod
from avgas.core import losses
from avgas.params import Params
from avgas.paths import torch_save_atomic as _save
from avgas.progress import tqdm
from avgas.separators import (  # noqa: F401 - what training shares with evaluation
    SeparatorData,
    _file_stamp,
    _read_own,
    _warn,
    load_separator,
    method_name,
    separator_data,
    separator_folder,
    trained_models,
)

log = logging.getLogger("avgas")


# ----------------------------------------------------------------------------------- training


@dataclass
class TrainResult:
    alignment: str
    folder: Path
    history: dict = field(default_factory=dict)  # train_loss, val_loss, seconds per epoch
    best_epoch: int = -1
    best_val: float = float("inf")
    reused: bool = False

    def summary(self) -> dict:
        return {
            "alignment": self.alignment,
            "epochs": len(self.history.get("val_loss", [])),
            "best_epoch": self.best_epoch + 1,
            "best_val_loss": round(self.best_val, 4),
            "seconds_per_epoch": round(float(np.mean(self.history.get("seconds", [0]))), 2),
        }


def _new_model(p: Params, alignment: str, dim: int) -> torch.nn.Module:
    """The separator (or the control, initialised from f_A), its weights channels-last: the same
    model, whose small convolutions and pooling run about a sixth faster on the CPU that way
    (benchmarks/separator_step.py)."""
    if alignment not in losses.CONTROLS:
        model = models.Separator(width=p.separator_width, dim=dim, sources=p.sources)
    else:
        fa = checkpoints.load_audio_encoder(p.weight_path("sound2scene_checkpoint"))
        model = models.MixEncoder(width=models.resnet18_width(fa.state_dict(), "audnet."), dim=dim, sources=p.sources)
        model.load_state_dict(fa.state_dict())  # the same keys: audnet.*
    return model.to(memory_format=torch.channels_last)


def _settings(p: Params, alignment: str, n_train: int) -> str:
    """What makes two trainings the same (epochs excluded: a resumed run may extend them); the
    frozen parts' files are part of it, so retrained stand-ins retrain the separator."""
    keys = {
        k: getattr(p, k)
        for k in (
            "seed",
            "separator_width",
            "batch_size",
            "lr",
            "weight_decay",
            "clip_seconds",
            "relative_level_db",
            "train_tuples",
        )
    }
    keys["targets"] = [_file_stamp(p.weight_path(k)) for k in ("sound2scene_checkpoint", "swav_checkpoint")]
    keys["fv_image_size"] = p.fv_image_size  # the f_V targets' input size (a given swav file keeps its bytes)
    if bf16_autocast(p):  # bfloat16 autocast trains another model
        keys["amp"] = True
    if p.sources != 2:  # absent for two sources, so the paper's separators keep their settings hash
        keys["sources"] = p.sources
    return hashlib.sha1(json.dumps({**keys, "alignment": alignment, "n": n_train}, sort_keys=True).encode()).hexdigest()


BF16_CHECKS = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # torch.cpu's (private) helpers


def cpu_has_bf16() -> bool:
    """Whether this CPU computes in bfloat16 natively (AVX512-BF16 or AMX); elsewhere autocast on
    the CPU emulates it, slower than float32."""
    return any(getattr(torch.cpu, f, lambda: False)() for f in BF16_CHECKS)


_said_ignored = False


def bf16_autocast(p: Params) -> bool:
    """Whether the separator trains under bfloat16 autocast: `amp: true` on CUDA, or on a CPU with
    bfloat16 instructions. On another CPU `amp` is ignored, said in the log (once per process): it
    trains in float32. So the store key of an amp run depends on the CPU it trains on."""
    global _said_ignored
    if not p.amp:
        return False
    if p.torch_device.type == "cuda" or (p.torch_device.type == "cpu" and cpu_has_bf16()):
        return True
    if not _said_ignored:
        log.warning("amp: true is ignored here: this CPU has no bfloat16 instructions; the separator trains in float32")
        _said_ignored = True
    return False


def _epoch_loss(
    model, d: SeparatorData, alignment: str, batch: int, order=None, opt=None, amp: bool = False, w=None
) -> float:
    """Mean loss over one pass; trains when an optimiser is given. `amp`: bfloat16 autocast on the
    model's device (no loss scaling needed; `bf16_autocast` says when). `w` (a distributed.World of several ranks):
    each rank embeds its slice of every batch and the loss is the whole batch's (avgas.distributed)."""
    w = w or distributed.World()
    n = len(d.mix)
    order = torch.arange(n) if order is None else order
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for i in range(0, n, batch):
        idx = order[i : i + batch]
        if len(idx) < 2:  # InfoNCE needs negatives (a rank's slice may be empty: the gather handles it)
            continue
        spec = d.mix[distributed.split(idx, w) if w.parallel else idx].to(device)  # this rank's rows
        targets = d.targets_of(idx, device)  # the whole batch's
        with (
            torch.set_grad_enabled(opt is not None),
            torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp),
        ):
            hs = tuple(h.float() for h in model(spec))
            if w.parallel:  # the global batch's slots, gradients flowing back to each rank's rows
                hs = tuple(distributed.gather(h, grad=opt is not None) for h in hs)
            loss = losses.separator_loss(hs, targets, alignment)
        if opt is not None:
            opt.zero_grad()
            loss.backward()
            opt.step()
        total += loss.item() * len(idx)
        count += len(idx)
    return total / max(1, count)


def _continue_from(p: Params, w, folder: Path, settings: str, alignment: str, device) -> dict | None:
    """The checkpoint (last.pt) a training continues from, or None to start at the first epoch:
    one of the same settings, beside the best.pt it wrote (else a warning: training starts again),
    when `resume` asks for it or it holds every epoch. Rank 0 decides, every rank follows
    (distributed.from_main)."""
    ck = None
    last = folder / "last.pt"
    if w.main and last.is_file():
        ck = _read_own(last, "cpu" if w.parallel else device)
        if ck is not None:
            same = ck.get("settings") == settings
            done = ck["epoch"] + 1 >= p.epochs
            best_whole = (folder / "best.pt").is_file() and ck.get("best_hash") == paths.file_hash(folder / "best.pt")
            if same and not best_whole:
                _warn(
                    f"separator {alignment}: {folder / 'best.pt'} is missing or damaged (its content differs "
                    "from what training wrote); training again from the first epoch"
                )
            if not same and (p.resume or done):  # e.g. amp: true on a CPU with bfloat16 and one without
                log.info(
                    "separator %s: %s was trained with other settings; training from the first epoch", alignment, last
                )
            ck = ck if same and best_whole and (p.resume or done) else None
    return distributed.from_main(ck)


def train_separator(
    p: Params,
    alignment: str,
    train: SeparatorData,
    val: SeparatorData,
    progress: bool = True,
    stop_after: int | None = None,
    replica: int = 0,
) -> TrainResult:
    """Train (or reuse, or resume) the separator for one alignment (or the control), with seed
    p.seed + replica. `stop_after` ends after that many epochs of this call, as a kill would."""
    p, folder, settings, stored = _identity(p, alignment, replica, train, val)
    folder.mkdir(parents=True, exist_ok=True)
    w = distributed.world()  # several ranks under torchrun; one process otherwise
    if w.size > p.batch_size:
        raise distributed.LaunchError(
            f"{w.size} ranks for a global batch of {p.batch_size} (batch_size): at most one rank per tuple"
        )
    device = distributed.device_for(p.torch_device, w)
    amp = bf16_autocast(p)
    torch.manual_seed(p.seed)
    net = distributed.wrap(_new_model(p, alignment, train.targets["A"][0].shape[1]).to(device), w)
    model = distributed.bare(net)  # what checkpoints hold, whatever the world size
    opt = torch.optim.Adam(net.parameters(), lr=p.lr, weight_decay=p.weight_decay)
    result = TrainResult(alignment, folder, {"train_loss": [], "val_loss": [], "seconds": []})
    start = 0
    last = folder / "last.pt"
    if w.main and stored is not None and not p.resume:  # trained before with all the same inputs
        instrument.fetch(stored)
    ck = _continue_from(p, w, folder, settings, alignment, device)
    if ck is not None:
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        result.history, result.best_epoch, result.best_val = ck["history"], ck["best_epoch"], ck["best_val"]
        start = ck["epoch"] + 1
        result.reused = ck["epoch"] + 1 >= p.epochs
    bar = tqdm(
        range(start, p.epochs),
        desc=f"{'separator ' if alignment not in losses.CONTROLS else ''}{alignment}"
        + (f" (seed {p.seed})" if replica else ""),
        unit="epoch",
        disable=not progress or not w.main,
        initial=start,
        total=p.epochs,
    )
    for epoch in bar:
        if stop_after is not None and epoch - start >= stop_after:
            break
        t0 = time.perf_counter()
        net.train()
        order = torch.randperm(len(train.mix), generator=torch.Generator().manual_seed(p.seed * 1000 + epoch))
        tr = _epoch_loss(net, train, alignment, p.batch_size, order, opt, amp=amp, w=w)
        net.eval()
        va = _epoch_loss(net, val, alignment, p.batch_size, amp=amp, w=w)  # the same on every rank
        result.history["train_loss"].append(tr)
        result.history["val_loss"].append(va)
        result.history["seconds"].append(time.perf_counter() - t0)
        improved = va < result.best_val
        if improved:
            result.best_val, result.best_epoch = va, epoch
        if improved and w.main:  # one writer: rank 0
            _save(
                {
                    "model": checkpoints.cpu_state(model.state_dict()),
                    "epoch": epoch,
                    "val_loss": va,
                    "alignment": alignment,
                    "width": p.separator_width,
                    "sources": p.sources,
                    "kind": type(model).__name__,
                },
                folder / "best.pt",
            )
        if w.main:
            _save(
                {
                    "model": checkpoints.cpu_state(model.state_dict()),
                    "optimizer": opt.state_dict(),
                    "epoch": epoch,
                    "history": result.history,
                    "best_epoch": result.best_epoch,
                    "best_val": result.best_val,
                    "settings": settings,
                    "width": p.separator_width,
                    "best_hash": paths.file_hash(folder / "best.pt"),
                    "world_size": w.size,  # information only: any world size resumes it
                },
                last,
            )
        distributed.barrier()  # no rank runs ahead of the checkpoint of this epoch
        bar.set_postfix(train=f"{tr:.3f}", val=f"{va:.3f}")
    if w.main and stored is not None and not result.reused and len(result.history["val_loss"]) >= p.epochs:
        instrument.publish(stored, result.summary(), float(sum(result.history["seconds"])))
    if stored is not None:
        instrument.release(stored)  # a training read back or stopped early publishes nothing
    return result


def _world_spec(p: Params) -> dict | None:
    return world.spec(p) if p.world == "synthetic" else None


def _stored(p: Params, world_spec: dict | None, settings: str, train: SeparatorData, val: SeparatorData, folder: Path):
    """The store entry of a finished training (synthetic world): the same settings (which hold
    the frozen parts' content), epochs, world and train/validation tuples train the same model,
    so a sibling run that differs only downstream (G, generation, judges) takes it as it is."""
    if world_spec is None:
        return None

    def rows(d: SeparatorData) -> str:
        return hashlib.sha1(d.tuples.to_csv(index=False).encode()).hexdigest()

    key = {"settings": settings, "epochs": p.epochs, "world": world_spec, "train": rows(train), "val": rows(val)}
    return instrument.entry(p, "separator", key, {"best.pt": folder / "best.pt", "last.pt": folder / "last.pt"})


def train_all(p: Params, train: SeparatorData, val: SeparatorData, progress: bool = True) -> dict:
    """Train (or reuse) every separator and control of the run: method name -> TrainResult.
    With `train_processes` > 1 (and not already inside torchrun) the training runs as a torchrun
    job first (`launch`); with `train_jobs` > 1 the trainings still to do run side by side first
    (`side_by_side`); what they wrote is then read back here, finished trainings reused."""
    if p.train_processes > 1 and "LOCAL_RANK" not in os.environ:
        launch(p)
    elif p.train_jobs > 1 and not os.environ.get(_JOB_ENV):
        side_by_side(p, train, val, [(a, r) for a, r in trained_models(p) if not _done(p, a, r, train, val)])
    return {method_name(a, r): train_separator(p, a, train, val, progress, replica=r) for a, r in trained_models(p)}


# ------------------------------------------------------------------ trainings side by side

_JOB_ENV = "AVGAS_TRAIN_JOB"  # set in a side-by-side worker: it trains, it launches nothing
_JOB: tuple | None = None  # a worker's (params, train, val), loaded once per process


def _identity(p: Params, alignment: str, replica: int, train: SeparatorData, val: SeparatorData):
    """What one training is: (its params, with the replica's seed; its folder; its settings hash;
    its store entry or None). The world is the run's, taken before the replica's seed."""
    folder = separator_folder(p, alignment, replica)
    world_spec = _world_spec(p)
    q = p.replace(seed=p.seed + replica) if replica else p  # its own seed: initialisation and epoch order
    settings = _settings(q, alignment, len(train.mix))
    return q, folder, settings, _stored(q, world_spec, settings, train, val, folder)


def _done(p: Params, alignment: str, replica: int, train: SeparatorData, val: SeparatorData) -> bool:
    """Whether train_separator would only read this training back: its store entry is whole, or
    the run's last.pt holds every epoch of the same settings beside the best.pt it wrote."""
    q, folder, settings, stored = _identity(p, alignment, replica, train, val)
    if stored is not None and not q.resume and instrument.whole(stored):
        return True
    ck = _read_own(folder / "last.pt") if (folder / "last.pt").is_file() else None
    best = folder / "best.pt"
    return (
        ck is not None
        and ck.get("settings") == settings
        and ck["epoch"] + 1 >= q.epochs
        and best.is_file()
        and ck.get("best_hash") == paths.file_hash(best)
    )


def _job_start(p: Params, data_file: str) -> None:
    global _JOB
    os.environ[_JOB_ENV] = "1"
    os.environ[progress_mod.ENV_WITHIN] = "separator trainings side by side"  # the stage table's note
    torch.set_num_threads(1)
    d = torch.load(data_file, weights_only=False, mmap=True)  # our own file, written just before
    _JOB = (p, d["train"], d["val"])


def _job(alignment: str, replica: int) -> tuple[str, dict]:
    p, train, val = _JOB
    result = train_separator(p, alignment, train, val, progress=True, replica=replica)
    return method_name(alignment, replica), result.summary()


def side_by_side(p: Params, train: SeparatorData, val: SeparatorData, todo: list[tuple[str, int]]) -> None:
    """Train `todo` (alignment, replica) in `p.train_jobs` processes of one torch thread each,
    every process taking the next training as it finishes one. Each training is the one
    train_separator makes alone (its seed, its epochs, its checkpoints, its store entry); the
    caller then reads them back. The wall time is one stage of the run's stage table."""
    jobs = min(p.train_jobs, len(todo))
    if jobs < 2:
        return
    work = p.run_dir / "cache" / f".train-jobs-{os.getpid()}.pt"
    work.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"train": train, "val": val}, work)
    t0 = time.perf_counter()
    log.info("%d separator trainings, %d side by side", len(todo), jobs)
    try:
        with cf.ProcessPoolExecutor(jobs, mp.get_context("spawn"), _job_start, (p, str(work))) as pool:
            for name, summary in pool.map(_job, *zip(*todo)):
                log.info("%s trained: %s", name, summary)
    finally:
        work.unlink(missing_ok=True)
    progress_mod.record_stage(
        f"separator trainings ({len(todo)}, {jobs} side by side)", len(todo), len(todo), time.perf_counter() - t0
    )


def train_run(p: Params, progress: bool = True) -> dict:
    """Notebook 03's training as a job of its own (`python -m avgas train`, alone or under
    torchrun): the run's tuples, frozen targets and every separator, into the run folder's
    checkpoints/ as one process writes them. Missing spectrogram and target caches are made by all
    ranks together, each a slice of the clips (spectrogram.cached), and written by rank 0."""
    w = distributed.setup(p.torch_device)
    try:
        cat = data.catalogue(p)
        tuples = data.make_tuples(cat, p)
        fa, fv, _ = checkpoints.load_parts(p)  # on CUDA: this rank's GPU (distributed.setup)
        splits = {s: separator_data(p, cat, tuples, s, fa, fv, progress and w.main) for s in ("train", "val")}
        return train_all(p, splits["train"], splits["val"], progress and w.main)
    finally:
        distributed.teardown()


def launch(p: Params, processes: int | None = None) -> None:
    """Run `train_run` in `processes` data-parallel processes on this node (torchrun) and wait.
    The job reads the resolved params from the run folder (`.train-params.yaml`); when the caller
    holds the run folder's lock (notebook 03 in `python -m avgas run`), the job works under it."""
    n = processes or p.train_processes
    resolved = p.folder.train_params
    params_mod.save(p.replace(train_processes=n), resolved)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}"]
    cmd += ["-m", "avgas", "train", str(resolved)]
    env = {**os.environ, "AVGAS_LOCK_HELD": "1"}
    env.setdefault("OMP_NUM_THREADS", str(p.threads or max(1, (os.cpu_count() or 1) // n)))  # n share the cores
    if p.torch_device.type == "cuda" and n > torch.cuda.device_count():
        raise distributed.LaunchError(f"train_processes: {n}, but torch sees {torch.cuda.device_count()} GPU(s)")
    r = subprocess.run(cmd, env=env)  # its progress lines pass through (notebook, log, terminal)
    resolved.unlink(missing_ok=True)
    if r.returncode != 0:
        raise distributed.LaunchError(
            f"torchrun ({n} processes) failed with exit code {r.returncode}; its output is above"
        )


def pure_step_seconds(p: Params, d: SeparatorData, alignment: str, n_batches: int = 10) -> float:
    """Seconds of one forward/backward/update on batches gathered beforehand — the floor an
    epoch's per-batch time is compared with (the data path's overhead is the difference)."""
    torch.manual_seed(p.seed)
    model = _new_model(p, alignment, d.targets["A"][0].shape[1]).train()  # as training makes it
    opt = torch.optim.Adam(model.parameters(), lr=p.lr, weight_decay=p.weight_decay)
    amp = p.torch_device.type == "cpu" and bf16_autocast(p)  # this step runs on the CPU
    idx = torch.arange(min(len(d.mix), p.batch_size * (n_batches + 1)))
    batches = [d.batch(idx[i : i + p.batch_size]) for i in range(0, len(idx) - p.batch_size + 1, p.batch_size)]
    times = []
    for x, targets in batches:
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            loss = losses.separator_loss(tuple(h.float() for h in model(x)), targets, alignment)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return float(np.median(times[1:] if len(times) > 1 else times))

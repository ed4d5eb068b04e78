"""Data-parallel separator training on PyTorch's own engine (torch.distributed, DDP), launched by
`torchrun` on one node or `srun torchrun` across nodes.

What must hold for N ranks × batch B/N to train exactly as 1 process × batch B:

- **the InfoNCE negatives are the global batch's.** Each rank embeds its slice of the batch; the
  slots are gathered across ranks *with their gradients* (`gather`), the targets without, and every
  rank takes the loss of the whole batch. Each rank back-propagates the same loss L, so the
  collectives' backward passes sum N copies of every gradient, and DDP's averaging divides by N:
  the parameters see exactly dL/dθ. With a per-rank loss the negatives would be B/N, and the loss
  (and what is learnt) would change with the world size.
- **BatchNorm sees the global batch.** torch's SyncBatchNorm runs on GPUs only, so `GlobalBatchNorm2d`
  does the same on any device: per-channel sums and counts are all-reduced (with gradients), the
  batch is normalised by the global mean and variance, and the running statistics follow them.
- **the same order and the same start.** Every rank draws the epoch's permutation from (seed, epoch)
  and builds the model from the same seed (DDP also broadcasts rank 0's weights at the start).
- **one writer.** Rank 0 writes the checkpoints (atomically, as in one process); they hold the bare
  model's weights, so a run resumes from a checkpoint written by any world size.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F


class LaunchError(RuntimeError):
    """A torchrun job failed; the message has its exit code and last lines."""


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def parallel(self) -> bool:
        return self.size > 1


def world() -> World:
    """This process's place in the process group it has joined (alone: rank 0 of 1). Only a joined
    group counts: torchrun's variables inherited by a child that never joined do not make it a rank."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    return World()


def launched() -> World:
    """The place torchrun gave this process (its variables), before it joins the group."""
    env = os.environ.get
    return World(int(env("RANK", 0)), int(env("WORLD_SIZE", 1)), int(env("LOCAL_RANK", 0)))


def setup(device: torch.device | str = "cpu") -> World:
    """Join the process group when launched by torchrun; a plain process stays alone. On GPUs,
    NCCL carries CUDA tensors and gloo the CPU ones (caches and generated images are gathered on
    the CPU). Returns this process's World."""
    w = launched()
    if w.size > 1 and not dist.is_initialized():
        cuda = torch.device(device).type == "cuda"
        if cuda:
            torch.cuda.set_device(w.local_rank)
        dist.init_process_group(backend="cpu:gloo,cuda:nccl" if cuda else "gloo")
    return world()


def device_for(p_device: torch.device, w: World) -> torch.device:
    """One GPU per rank (its local rank); the CPU stays the CPU."""
    return torch.device("cuda", w.local_rank) if p_device.type == "cuda" else p_device


def _joined() -> bool:
    """In a process group of more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def from_main(obj):
    """Rank 0's object on every rank (a decision, e.g. "is this cache fresh?", with what it rests
    on), so that every rank takes the same path."""
    if not _joined():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    if _joined():
        dist.barrier()


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


# ------------------------------------------------------------------ the global batch, gathered


def split(idx: torch.Tensor, w: World) -> torch.Tensor:
    """This rank's contiguous slice of a global batch (sizes differ by at most one)."""
    return torch.tensor_split(idx, w.size)[w.rank]


def gather(x: torch.Tensor, grad: bool = True) -> torch.Tensor:
    """Concatenate every rank's rows in rank order. With `grad`, gradients flow back to each rank's
    own rows (torch.distributed.nn's all_gather); slices may differ in length by a row or more."""
    if not _joined():
        return x
    n = torch.tensor([x.shape[0]], device=x.device)
    sizes = [torch.zeros_like(n) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, n)
    sizes = [int(s) for s in sizes]
    pad = max(sizes) - x.shape[0]
    xp = F.pad(x, (0, 0) * (x.dim() - 1) + (0, pad)) if pad else x  # all_gather needs equal shapes
    if grad:
        from torch.distributed.nn.functional import all_gather

        with warnings.catch_warnings():  # deprecated in favour of a private module; still torch's autograd gather
            warnings.simplefilter("ignore", FutureWarning)
            parts = all_gather(xp)
    else:
        parts = [torch.empty_like(xp) for _ in sizes]
        dist.all_gather(parts, xp.contiguous())
    return torch.cat([part[:s] for part, s in zip(parts, sizes)])


def all_sum(x: torch.Tensor) -> torch.Tensor:
    """Sum over ranks, differentiable (each rank gets the gradient of the sum)."""
    if not _joined():
        return x
    from torch.distributed.nn.functional import all_reduce

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return all_reduce(x)


# ------------------------------------------------------------------ BatchNorm over the global batch


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are those of the batch across every rank (what
    SyncBatchNorm does on GPUs, here on any device). Alone, it is BatchNorm2d exactly."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and _joined()):
            return super().forward(x)
        c = x.shape[1]
        x = x.float()  # statistics in float32 even under autocast (as batch_norm runs there)
        count = torch.tensor([x.numel() / c], dtype=torch.float32, device=x.device)
        stats = all_sum(torch.cat([x.sum(dim=(0, 2, 3)), (x * x).sum(dim=(0, 2, 3)), count]))
        n = stats[-1]
        mean = stats[:c] / n
        var = (stats[c : 2 * c] / n - mean * mean).clamp_min(0)  # biased, as BatchNorm normalises
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(m * mean)
                self.running_var.mul_(1 - m).add_(m * var * n / (n - 1))  # unbiased, as BatchNorm keeps
        y = (x - mean[None, :, None, None]) * torch.rsqrt(var[None, :, None, None] + self.eps)
        return y * self.weight[None, :, None, None] + self.bias[None, :, None, None] if self.affine else y


def global_batchnorm(model: nn.Module) -> nn.Module:
    """Every BatchNorm2d of the model replaced by a GlobalBatchNorm2d holding the same state."""
    for name, child in model.named_children():
        if type(child) is nn.BatchNorm2d:
            g = GlobalBatchNorm2d(
                child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats
            )
            g.load_state_dict(child.state_dict())
            setattr(model, name, g.to(next(child.buffers()).device))
        else:
            global_batchnorm(child)
    return model


def wrap(model: nn.Module, w: World) -> nn.Module:
    """The model as this rank trains it: DDP over global BatchNorm when there are several ranks."""
    if not w.parallel:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    model = global_batchnorm(model)
    on_gpu = next(model.parameters()).device.type == "cuda"
    return DDP(model, device_ids=[w.local_rank] if on_gpu else None)


def bare(model: nn.Module) -> nn.Module:
    """The model inside a DDP wrapper (what checkpoints hold)."""
    return model.module if hasattr(model, "module") else model

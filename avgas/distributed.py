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

import warnings

import torch
import torch.nn as nn
from torch.distributed.nn.functional import all_reduce
from torch.nn.parallel import DistributedDataParallel as DDP

# The process group (World, world, split, gather, ...) is avgas.ranks, which the data caches and the
# sharded generation use too; named here as well, as training calls them through this module.
from avgas.ranks import (  # noqa: F401
    LaunchError,
    World,
    _joined,
    barrier,
    device_for,
    from_main,
    gather,
    launched,
    setup,
    split,
    teardown,
    world,
)


def all_sum(x: torch.Tensor) -> torch.Tensor:
    """Sum over ranks, differentiable (each rank gets the gradient of the sum)."""
    if not _joined():
        return x
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
    model = global_batchnorm(model)
    on_gpu = next(model.parameters()).device.type == "cuda"
    return DDP(model, device_ids=[w.local_rank] if on_gpu else None)


def bare(model: nn.Module) -> nn.Module:
    """The model inside a DDP wrapper (what checkpoints hold)."""
    return model.module if hasattr(model, "module") else model

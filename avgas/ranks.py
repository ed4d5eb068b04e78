"""The process group of a torchrun job: which rank this process is, and what the ranks share.

Everything that runs under torchrun uses it: the caches made together (spectrogram.cached), the
images drawn in slices (generate.sample), and the training (avgas.distributed, which adds the
global batch's BatchNorm and DDP). Alone, a process is rank 0 of 1 and every call is a no-op.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.distributed.nn.functional import all_gather


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
        with warnings.catch_warnings():  # deprecated in favour of a private module; still torch's autograd gather
            warnings.simplefilter("ignore", FutureWarning)
            parts = all_gather(xp)
    else:
        parts = [torch.empty_like(xp) for _ in sizes]
        dist.all_gather(parts, xp.contiguous())
    return torch.cat([part[:s] for part, s in zip(parts, sizes)])

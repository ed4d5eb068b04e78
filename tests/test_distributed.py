"""Data-parallel training (issue 15) checked on CPU with the gloo backend and 2 processes: one
optimisation step of 2 ranks × batch 8 equals 1 process × batch 16 — BatchNorm over the global batch
and InfoNCE negatives gathered across ranks; without the gathered negatives it would not."""

from __future__ import annotations

import os
import tempfile

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from avgas import distributed, losses, models, train


def _data(n: int = 16, dim: int = 32, frames: int = 40, seed: int = 7) -> train.SeparatorData:
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(n, 257, frames, generator=g)
    a = tuple(torch.randn(n, dim, generator=g) for _ in range(2))
    v = tuple(torch.randn(n, dim, generator=g) for _ in range(2))
    return train.SeparatorData(None, mix, {"A": a, "V": v})


def one_step(
    w: distributed.World, alignment: str = "A2A", steps: int = 1, local_loss: bool = False, optimiser: str = "sgd"
) -> dict:
    """`steps` optimiser steps on the 16 tuples of _data (one global batch each), from seed 0."""
    torch.manual_seed(0)
    net = distributed.wrap(models.Separator(width=0.125, dim=32), w)
    if optimiser == "adam":  # what training uses
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    else:
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    d = _data()
    if local_loss:  # the naive data-parallel loss: each rank's own 8 tuples as the only negatives
        mine = distributed.split(torch.arange(16), w)
        d = train.SeparatorData(None, d.mix[mine], {k: tuple(t[mine] for t in ts) for k, ts in d.targets.items()})
        w = distributed.World()
    net.train()
    loss = [train._epoch_loss(net, d, alignment, 16, None, opt, w=w) for _ in range(steps)]
    state = {k: v.detach().clone() for k, v in distributed.bare(net).state_dict().items()}
    grads = {k: v.grad.detach().clone() for k, v in distributed.bare(net).named_parameters()}  # of the last step
    return {"loss": loss, "state": state, "grad": grads}


def _worker(rank: int, size: int, init: str, out: str, kwargs: dict) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=size)
    try:
        r = one_step(distributed.world(), **kwargs)
        if rank == 0:
            torch.save(r, out)
    finally:
        dist.destroy_process_group()


def two_ranks(**kwargs) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "r.pt")
        mp.spawn(_worker, args=(2, os.path.join(tmp, "init"), out, kwargs), nprocs=2, join=True)
        return torch.load(out)


def _max_diff(a: dict, b: dict) -> float:
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


@pytest.mark.parametrize("alignment", ["A2A", "A2A+A2V", "A2A-PIT"])
def test_two_ranks_of_8_step_like_one_process_of_16(alignment):
    torch.set_num_threads(1)
    one = one_step(distributed.World(), alignment, steps=2)
    two = two_ranks(alignment=alignment, steps=2)
    assert abs(one["loss"][0] - two["loss"][0]) < 1e-5, (one["loss"], two["loss"])
    assert abs(one["loss"][1] - two["loss"][1]) < 1e-5, (one["loss"], two["loss"])
    assert set(one["state"]) == set(two["state"])  # the same keys: checkpoints load at any world size
    # the gradients of the second step, then weights and BatchNorm's running statistics after it
    for k, g in one["grad"].items():
        assert torch.allclose(g, two["grad"][k], rtol=1e-3, atol=1e-6), k
    assert _max_diff(one["state"], two["state"]) < 1e-5


def test_adam_steps_agree_where_adam_is_well_conditioned():
    """Training's optimiser. Adam's first step moves each weight by lr * g / (|g| + 1e-8): where a
    gradient is float noise (|g| < 1e-6) its sign, and so a step of up to lr, can differ between
    any two summation orders, one process or two. Everywhere else the weights agree."""
    torch.set_num_threads(1)
    one = one_step(distributed.World(), optimiser="adam")
    two = two_ranks(optimiser="adam")
    for k, g in one["grad"].items():
        well = g.abs() > 1e-6
        assert torch.allclose(one["state"][k][well], two["state"][k][well], atol=1e-6), k
        assert float((one["state"][k] - two["state"][k]).abs().max()) <= 2e-3 + 1e-7  # never more than 2 lr


def test_per_rank_negatives_would_change_the_training():
    """What the gathered negatives buy: the naive per-rank loss (8 negatives) ends elsewhere."""
    torch.set_num_threads(1)
    one = one_step(distributed.World())
    naive = two_ranks(local_loss=True)
    assert _max_diff(one["state"], naive["state"]) > 1e-3


def test_global_batchnorm_alone_is_batchnorm():
    torch.manual_seed(0)
    bn = torch.nn.BatchNorm2d(4)
    g = distributed.global_batchnorm(torch.nn.Sequential(bn))[0]
    assert isinstance(g, distributed.GlobalBatchNorm2d)
    x = torch.randn(6, 4, 5, 5)
    ref = torch.nn.BatchNorm2d(4)
    assert torch.allclose(g(x), ref(x)) and torch.allclose(g.running_var, ref.running_var)


def test_the_loss_is_the_global_batchs():
    """The losses module sees the gathered batch: its value on 16 tuples, whatever the ranks."""
    d = _data()
    torch.manual_seed(0)
    net = models.Separator(width=0.125, dim=32).eval()
    with torch.no_grad():
        full = losses.separator_loss(net(d.mix), d.targets, "A2A")
        assert abs(train._epoch_loss(net, d, "A2A", 16) - float(full)) < 1e-6

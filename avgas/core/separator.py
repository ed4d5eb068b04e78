"""The audio-visual separator f_AV and its inference (Sec. 3.2, 3.3.2; Fig. 3's separation module).

f_AV is a ResNet-18 on the mixed spectrogram whose head gives 2 x D numbers: the first half is the
foreground's embedding h_fg, the second the background's h_bg (with K sources, K slots of D,
foregrounds first). A control is Sound2Scene's f_A fine-tuned on mixtures: one embedding per mix.
Sound2Scene itself, the baseline, embeds the mix with f_A: one embedding for every source.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from avgas.core import losses

FEATURE_DIM = 2048  # Sound2Scene's embedding size (f_A, f_V, and G's conditioning input)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet18(nn.Module):
    """torchvision's ResNet-18 layout (same key names) with `in_channels` and a width multiplier."""

    def __init__(self, in_channels: int = 1, out_dim: int = FEATURE_DIM, width: float = 1.0):
        super().__init__()
        c = [max(8, int(round(64 * width * m))) for m in (1, 2, 4, 8)]
        self.width = width
        self.conv1 = nn.Conv2d(in_channels, c[0], 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(c[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(BasicBlock(c[0], c[0]), BasicBlock(c[0], c[0]))
        self.layer2 = nn.Sequential(BasicBlock(c[0], c[1], 2), BasicBlock(c[1], c[1]))
        self.layer3 = nn.Sequential(BasicBlock(c[1], c[2], 2), BasicBlock(c[2], c[2]))
        self.layer4 = nn.Sequential(BasicBlock(c[2], c[3], 2), BasicBlock(c[3], c[3]))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c[3], out_dim)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet18_width(state: dict, prefix: str = "") -> float:
    """The width multiplier a ResNet18 state_dict was saved with."""
    return state[f"{prefix}conv1.weight"].shape[0] / 64


class Separator(nn.Module):
    """f_AV: mixed spectrogram -> (h_fg, h_bg), each D-dimensional (first half = foreground);
    with `sources` K, K slots of D (foregrounds first, the background last)."""

    def __init__(self, width: float = 1.0, dim: int = FEATURE_DIM, sources: int = 2):
        super().__init__()
        self.dim, self.sources = dim, sources
        self.net = ResNet18(1, sources * dim, width)

    def forward(self, spec: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if spec.dim() == 3:
            spec = spec.unsqueeze(1)
        return tuple(self.net(spec).split(self.dim, dim=1))


class MixEncoder(nn.Module):
    """A control (A2A's or A2V's): Sound2Scene's f_A, started from its weights and fine-tuned on mixed audio, with
    one embedding per mix (returned once per slot, so it trains and runs where a separator does)."""

    def __init__(self, width: float = 1.0, dim: int = FEATURE_DIM, sources: int = 2):
        super().__init__()
        self.dim, self.sources = dim, sources
        self.audnet = ResNet18(1, dim, width)

    def forward(self, spec: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if spec.dim() == 3:
            spec = spec.unsqueeze(1)
        h = F.relu(self.audnet(spec))
        return (h,) * self.sources


def from_state(state: dict, kind: str = "Separator", width: float | None = None, sources: int = 2) -> nn.Module:
    """A separator (or a control, kind 'MixEncoder') rebuilt from its state_dict, in eval mode: its
    width and embedding size are read back from the weights' shapes."""
    if kind == "MixEncoder":
        model = MixEncoder(resnet18_width(state, "audnet."), state["audnet.fc.weight"].shape[0], sources)
    else:
        dim = state["net.fc.weight"].shape[0] // sources
        model = Separator(width or resnet18_width(state, "net."), dim, sources)
    model.load_state_dict(state)
    return model.eval()


def embed(net: nn.Module, x: torch.Tensor, batch: int = 128):
    """net(x) in batches without gradients, on the net's device, returned on the CPU: a tensor, or
    a tuple of tensors (one per slot) for a separator."""
    net.eval()
    device = next(net.parameters()).device
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            y = net(x[i : i + batch].to(device))
            out.append(tuple(h.cpu() for h in y) if isinstance(y, tuple) else y.cpu())
    if out and isinstance(out[0], tuple):
        return tuple(torch.cat(slot) for slot in zip(*out))
    return torch.cat(out)


def separate(model: nn.Module, mix: torch.Tensor, batch: int = 128) -> tuple[torch.Tensor, ...]:
    """(h_fg, h_bg) for mixed spectrograms (N, 257, T), or the K slots (computed on the model's
    device, returned on the CPU)."""
    return embed(model, mix, batch)


def embed_mix(fa: nn.Module, mix: torch.Tensor, batch: int = 128) -> torch.Tensor:
    """The Sound2Scene baseline: f_A of the mixed spectrogram (one embedding for both sources)."""
    return embed(fa, mix, batch)


def matched(alignment: str, hs: tuple, targets: dict) -> tuple:
    """A PIT separator's slots put in source order by the same assignment as in training,
    computed on embeddings (the true sources' targets), never on a judge's output; a fixed-order
    separator's slots as they are (its order is the paper's label)."""
    if not losses.is_pit(alignment):
        return hs
    perm = losses.assign(hs, targets, alignment)  # perm[i, s] = source of slot s
    inverse = torch.argsort(perm, dim=1)  # inverse[i, j] = slot holding source j
    return losses.reorder(hs, inverse)


def closer_to_own_source(h: torch.Tensor, own: torch.Tensor, other: torch.Tensor) -> float:
    """Share of rows where cos(h, own source's target) > cos(h, other source's target)."""
    return (F.cosine_similarity(h, own) > F.cosine_similarity(h, other)).float().mean().item()


def closer_to_own(hs: tuple, targets: tuple) -> list[float]:
    """Per slot s: the share of tuples whose slot is closer (cosine) to its own source's target
    than to every other source's (the baseline passes f_A(mix) as every slot)."""
    out = []
    for s, h in enumerate(hs):
        own = F.cosine_similarity(h, targets[s])
        others = torch.stack([F.cosine_similarity(h, t) for j, t in enumerate(targets) if j != s]).max(0).values
        out.append((own > others).float().mean().item())
    return out

"""The networks, as the real checkpoints lay them out.

- f_A, Sound2Scene's audio encoder: a ResNet-18 on one-channel spectrograms, fc 512 -> 2048, ReLU,
  held under the attribute ``audnet`` (so its state_dict keys read ``audnet.conv1.weight`` ...).
- f_V, the SwAV image encoder: torchvision's ResNet-50 trunk; the feature is the 2048-d pooled
  layer4 output.
- G, IC-GAN's BigGAN generator: hierarchical z, spectral-norm layers that keep ``u0``/``sv0``
  buffers, conditional BatchNorm driven by [projected instance feature, z chunk], optional
  self-attention, tanh output. Built from IC-GAN's ``config`` dict, so the same class serves the
  128-px ImageNet generator and a small synthetic one.
- f_AV, the AV-GAS separator: a ResNet-18 on the mixed spectrogram with a 2 x D head (avgas.core.separator).

``width`` scales every channel count of the ResNet-18s (1.0 = the real architecture); the
synthetic tiers use narrower networks so they train on two CPU cores. The state_dict keys are the
same at every width; only the shapes change, and the loaders read the width back from them.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from avgas.core import generation, separator

# The separator's networks are the paper's method: they live in avgas.core (named here too, as the
# checkpoints and the stand-ins build them beside f_A, f_V and G).
FEATURE_DIM = separator.FEATURE_DIM
ResNet18, Separator, MixEncoder, resnet18_width = (
    separator.ResNet18,
    separator.Separator,
    separator.MixEncoder,
    separator.resnet18_width,
)

# ------------------------------------------------------------------------------ f_A (audio)


class AudioEncoder(nn.Module):
    """f_A: spectrogram (B, 1, 257, T) -> 2048-d non-negative embedding (fc then ReLU)."""

    def __init__(self, width: float = 1.0, out_dim: int = FEATURE_DIM):
        super().__init__()
        self.audnet = ResNet18(1, out_dim, width)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        if spec.dim() == 3:
            spec = spec.unsqueeze(1)
        return F.relu(self.audnet(spec))


# ---------------------------------------------------------------------------- ResNet-50 (images)


def image_encoder(width_per_group: int = 64) -> nn.Module:
    """f_V: torchvision's ResNet-50, (B, 3, H, W) normalised images -> 2048-d pooled feature.

    The fc layer is an Identity, so the state_dict holds exactly the trunk keys that a SwAV
    checkpoint provides. `width_per_group` (64 = the real network) thins the bottleneck
    convolutions of the synthetic stand-in while keeping the 2048-d output."""
    net = torchvision.models.resnet50(weights=None, width_per_group=width_per_group)
    net.fc = nn.Identity()
    return net


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def image_to_encoder_input(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (B, H, W, 3) or float [0, 1] (B, 3, H, W) -> ImageNet-normalised (B, 3, size, size),
    bicubic, as Sound2Scene feeds f_V."""
    if images.dtype == torch.uint8:
        images = images.permute(0, 3, 1, 2).float() / 255
    if images.shape[-1] != size:
        images = F.interpolate(images, size=(size, size), mode="bicubic", align_corners=True)
    mean = images.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = images.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (images - mean) / std


# ------------------------------------------------------------------- IC-GAN BigGAN generator (G)


class SN:
    """Spectral normalisation as BigGAN/IC-GAN store it: the raw weight, and buffers u0 [1, out]
    and sv0 [1]. Every forward runs one power iteration from u0 (the stored sv0 is only a log);
    in training mode u0 and sv0 are updated."""

    def _init_sn(self, out_features: int, eps: float):
        self.sn_eps = eps
        self.register_buffer("u0", torch.randn(1, out_features))
        self.register_buffer("sv0", torch.ones(1))

    def W_(self) -> torch.Tensor:
        w = self.weight.view(self.weight.size(0), -1)
        with torch.no_grad():
            v = F.normalize(self.u0 @ w, eps=self.sn_eps)
            u = F.normalize(v @ w.t(), eps=self.sn_eps)
            if self.training:
                self.u0.copy_(u)
        sv = ((v @ w.t()) @ u.t()).squeeze()
        if self.training:
            self.sv0.copy_(sv.detach().reshape(1))
        return self.weight / sv


class SNConv2d(nn.Conv2d, SN):
    def __init__(self, cin, cout, kernel_size=3, padding=1, bias=True, eps=1e-6):
        nn.Conv2d.__init__(self, cin, cout, kernel_size, padding=padding, bias=bias)
        self._init_sn(cout, eps)

    def forward(self, x):
        return F.conv2d(x, self.W_(), self.bias, self.stride, self.padding)


class SNLinear(nn.Linear, SN):
    def __init__(self, cin, cout, bias=True, eps=1e-6):
        nn.Linear.__init__(self, cin, cout, bias=bias)
        self._init_sn(cout, eps)

    def forward(self, x):
        return F.linear(x, self.W_(), self.bias)


class ConditionalBN(nn.Module):
    """IC-GAN's ccbn: batch norm without affine parameters, then a gain and bias predicted from
    the conditioning vector y by bias-free SN linears: out * (1 + gain(y)) + bias(y)."""

    def __init__(self, channels: int, cond_dim: int, eps: float = 1e-5, sn_eps: float = 1e-6):
        super().__init__()
        self.register_buffer("stored_mean", torch.zeros(channels))
        self.register_buffer("stored_var", torch.ones(channels))
        self.gain = SNLinear(cond_dim, channels, bias=False, eps=sn_eps)
        self.bias = SNLinear(cond_dim, channels, bias=False, eps=sn_eps)
        self.eps = eps

    def forward(self, x, y):
        out = F.batch_norm(x, self.stored_mean, self.stored_var, None, None, self.training, 0.1, self.eps)
        return out * (1 + self.gain(y)[:, :, None, None]) + self.bias(y)[:, :, None, None]


class BN(nn.Module):
    """BigGAN's plain `bn` layer (output layer): parameters gain/bias, buffers stored_mean/var."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.gain = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("stored_mean", torch.zeros(channels))
        self.register_buffer("stored_var", torch.ones(channels))
        self.eps = eps

    def forward(self, x):
        return F.batch_norm(x, self.stored_mean, self.stored_var, self.gain, self.bias, self.training, 0.1, self.eps)


class GBlock(nn.Module):
    def __init__(self, cin, cout, cond_dim, bn_eps, sn_eps):
        super().__init__()
        # registration order = state_dict order: conv1, conv2, conv_sc, bn1, bn2 (as IC-GAN)
        self.conv1 = SNConv2d(cin, cout, eps=sn_eps)
        self.conv2 = SNConv2d(cout, cout, eps=sn_eps)
        self.conv_sc = SNConv2d(cin, cout, 1, 0, eps=sn_eps)
        self.bn1 = ConditionalBN(cin, cond_dim, bn_eps, sn_eps)
        self.bn2 = ConditionalBN(cout, cond_dim, bn_eps, sn_eps)

    def forward(self, x, y):
        h = F.relu(self.bn1(x, y))
        h = F.interpolate(h, scale_factor=2)
        x = F.interpolate(x, scale_factor=2)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), y)))
        return h + self.conv_sc(x)


class Attention(nn.Module):
    def __init__(self, ch, sn_eps):
        super().__init__()
        self.ch = ch
        self.theta = SNConv2d(ch, ch // 8, 1, 0, bias=False, eps=sn_eps)
        self.phi = SNConv2d(ch, ch // 8, 1, 0, bias=False, eps=sn_eps)
        self.g = SNConv2d(ch, ch // 2, 1, 0, bias=False, eps=sn_eps)
        self.o = SNConv2d(ch // 2, ch, 1, 0, bias=False, eps=sn_eps)
        self.gamma = nn.Parameter(torch.tensor(0.0))

    def forward(self, x, y=None):
        b, c, h, w = x.shape
        theta = self.theta(x).view(b, c // 8, h * w)
        phi = F.max_pool2d(self.phi(x), 2).view(b, c // 8, h * w // 4)
        g = F.max_pool2d(self.g(x), 2).view(b, c // 2, h * w // 4)
        beta = F.softmax(theta.transpose(1, 2) @ phi, -1)
        o = self.o((g @ beta.transpose(1, 2)).view(b, c // 2, h, w))
        return self.gamma * o + x


# BigGAN's G_arch: channel multipliers per resolution (in -> out), each block doubles the size.
G_ARCH = {
    256: ([16, 16, 8, 8, 4, 2], [16, 8, 8, 4, 2, 1]),
    128: ([16, 16, 8, 4, 2], [16, 8, 4, 2, 1]),
    64: ([16, 16, 8, 4], [16, 8, 4, 2]),
    32: ([4, 4, 4], [4, 4, 4]),
}


def _as_bool(v) -> bool:
    return v if isinstance(v, bool) else str(v).lower() in ("1", "true", "yes")


class Generator(nn.Module):
    """IC-GAN's instance-conditioned BigGAN generator, built from its training `config` dict.

    forward(z, label, feats): z (B, dim_z), label ignored (instance-only model), feats (B, 2048)
    L2-normalised instance features -> images (B, 3, R, R) in [-1, 1]."""

    CONFIG_KEYS = ("G_ch", "dim_z", "resolution", "G_attn", "hier", "shared_dim_feat")

    def __init__(self, config: dict):
        super().__init__()
        missing = [k for k in self.CONFIG_KEYS if k not in config]
        if missing:
            raise KeyError(f"IC-GAN config lacks {missing}")
        self.config = dict(config)
        ch = int(config["G_ch"])
        self.resolution = int(config["resolution"])
        if self.resolution not in G_ARCH:
            raise ValueError(f"resolution {self.resolution} not in {sorted(G_ARCH)}")
        ins, outs = G_ARCH[self.resolution]
        ins, outs = [ch * m for m in ins], [ch * m for m in outs]
        self.bottom_width = int(config.get("bottom_width", 4))
        attn = {int(a) for a in str(config["G_attn"]).split("_") if a and int(a) > 0}
        if not _as_bool(config["hier"]):
            raise ValueError("only hierarchical z (hier: true) is supported, as in IC-GAN")
        n_slots = len(ins) + 1
        self.z_chunk = int(config["dim_z"]) // n_slots
        self.dim_z = self.z_chunk * n_slots
        feat_out = int(config["shared_dim_feat"])
        bn_eps, sn_eps = float(config.get("BN_eps", 1e-5)), float(config.get("SN_eps", 1e-6))
        self.feature_dim = int(config.get("feature_dim", FEATURE_DIM))
        cond = feat_out + self.z_chunk
        self.shared = nn.Embedding(int(config.get("n_classes", 1000)), int(config.get("shared_dim", 128)))
        self.shared_feat = SNLinear(self.feature_dim, feat_out, eps=sn_eps)
        self.linear = SNLinear(self.z_chunk, ins[0] * self.bottom_width**2, eps=sn_eps)
        blocks, res = [], self.bottom_width
        for cin, cout in zip(ins, outs):
            res *= 2
            blocks.append(
                nn.ModuleList(
                    [GBlock(cin, cout, cond, bn_eps, sn_eps)] + ([Attention(cout, sn_eps)] if res in attn else [])
                )
            )
        self.blocks = nn.ModuleList(blocks)
        self.output_layer = nn.Sequential(BN(outs[-1], bn_eps), nn.ReLU(), SNConv2d(outs[-1], 3, eps=sn_eps))
        self._ortho_init()

    def _ortho_init(self):
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding)):
                nn.init.orthogonal_(m.weight)

    def forward(self, z: torch.Tensor, label=None, feats: torch.Tensor | None = None) -> torch.Tensor:
        y = self.shared_feat(feats)
        zs = torch.split(z, self.z_chunk, dim=1)
        ys = [torch.cat([y, zi], 1) for zi in zs[1:]]  # feature first, then the z chunk
        h = self.linear(zs[0]).view(z.shape[0], -1, self.bottom_width, self.bottom_width)
        for i, blocklist in enumerate(self.blocks):
            for block in blocklist:
                h = block(h, ys[i])
        return torch.tanh(self.output_layer(h))


# ------------------------------------------- images and sounds in and out of the frozen parts


to_unit, from_unit = generation.to_unit, generation.from_unit  # G's range <-> uint8 images


def encode_images(fv: nn.Module, images: torch.Tensor, size: int, batch: int = 256) -> torch.Tensor:
    """L2-normalised f_V features of uint8 images (N, H, W, 3)."""
    fv.eval()
    device = next(fv.parameters()).device
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch):
            x = image_to_encoder_input(images[i : i + batch], size).to(device)
            out.append(F.normalize(fv(x), dim=1).cpu())
    return torch.cat(out)


def embed_audio(fa: nn.Module, specs: torch.Tensor, batch: int = 128) -> torch.Tensor:
    """f_A embeddings (raw, post-ReLU) of spectrograms (N, 257, T)."""
    return separator.embed(fa, specs, batch)

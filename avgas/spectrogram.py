"""Sound2Scene's spectrogram, in torch so that it batches, and a scipy reference.

Sound2Scene: read 16 kHz mono, tile to fill and cut to the clip length, clip to [-1, 1], then
``scipy.signal.spectrogram(x, 16000, nperseg=512, noverlap=353)`` (linear frequency, Tukey(0.25)
window, hop 159, per-segment mean removal, one-sided density scaling), natural log of S + 1e-7,
and per-clip standardisation by the clip's own mean and std (+1e-9). 10 s -> (257, 1004).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import scipy.signal
import soundfile as sf
import torch

from avgas import ranks
from avgas.layout import SR  # 16 kHz mono (spectrogram.SR: the name its callers use)
from avgas.paths import torch_save_atomic
from avgas.progress import tqdm

NPERSEG = 512
HOP = 159  # noverlap = 353
EPS_LOG = 1e-7
EPS_STD = 1e-9
MAX_BATCH_SAMPLES = 1_500_000


class AudioError(ValueError):
    """A clip that cannot be used (unreadable, wrong rate, empty). The message names the file."""


def n_samples(clip_seconds: float) -> int:
    return int(round(clip_seconds * SR))


def n_frames(clip_seconds: float) -> int:
    return (n_samples(clip_seconds) - NPERSEG) // HOP + 1


def fit_length(x: np.ndarray, n: int) -> np.ndarray:
    """Tile a clip to fill n samples, then cut (Sound2Scene does the same for short clips)."""
    if len(x) == 0:
        raise AudioError("empty clip")
    if len(x) < n:
        x = np.tile(x, int(np.ceil(n / len(x))))
    return x[:n]


# One rule for a usable clip, in both worlds (ingestion, the catalogue and every load use it):
# 16 kHz; every sample finite; at least `min_seconds` long (the catalogue asks for
# min(min_clip_seconds, clip_seconds); never less than one spectrogram window); and not silent
# (RMS at least SILENCE_RMS of full scale).
SILENCE_RMS = 1e-4


def wave_problem(x: np.ndarray, sr: int, min_seconds: float = 0.0) -> str | None:
    """Why a decoded clip (samples, or samples x channels) cannot be used, or None when it can."""
    if sr != SR:
        return (
            f"sample rate is {sr} Hz; Sound2Scene's encoder expects {SR} Hz (resample it, e.g. ffmpeg -ar 16000 -ac 1)"
        )
    n = x.shape[0]
    if n < max(NPERSEG, int(round(min_seconds * SR))):
        return f"too short ({n / SR:.3f} s < {max(NPERSEG / SR, min_seconds):.3f} s)"
    if not np.isfinite(x).all():
        return f"non-finite audio ({int((~np.isfinite(x)).sum())} NaN or infinite samples)"
    if float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) < SILENCE_RMS:
        return f"silent audio (RMS below {SILENCE_RMS:g} of full scale)"
    return None


def read_wave(path: str | Path) -> tuple[np.ndarray, int]:
    """(samples x channels float32, sample rate), or an AudioError naming the file."""
    try:
        return sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:  # soundfile raises several types for corrupt or missing files
        raise AudioError(f"{path}: cannot read audio ({' '.join(str(e).split())[:200]})") from None


def load_wave(path: str | Path, clip_seconds: float, min_seconds: float = 0.0) -> np.ndarray:
    """Read a wav as Sound2Scene does: 16 kHz mono, fitted to the clip length, in [-1, 1]. A clip
    that breaks the rule above stops here with the file named (never a NaN spectrogram)."""
    x, sr = read_wave(path)
    why = wave_problem(x, sr, min_seconds)
    if why:
        raise AudioError(f"{path}: {why}")
    return np.clip(fit_length(x.mean(axis=1), n_samples(clip_seconds)), -1.0, 1.0)


_WINDOWS: dict = {}


def _window(device, dtype) -> torch.Tensor:
    key = (str(device), dtype)
    if key not in _WINDOWS:  # the periodic Tukey window scipy uses by default
        w = scipy.signal.get_window(("tukey", 0.25), NPERSEG)
        _WINDOWS[key] = torch.as_tensor(w, device=device, dtype=dtype)
    return _WINDOWS[key]


def spectrogram(x: torch.Tensor, standardise: bool = True) -> torch.Tensor:
    """(B, N) or (N,) waveforms -> (B, 257, T) log spectrograms, Sound2Scene's transform."""
    single = x.dim() == 1
    x = x.reshape(1, -1) if single else x
    if x.shape[-1] < NPERSEG:
        raise AudioError(f"clip of {x.shape[-1]} samples is shorter than one {NPERSEG}-sample window")
    win = _window(x.device, x.dtype)
    frames = x.unfold(-1, NPERSEG, HOP)  # (B, T, 512), no padding
    frames = frames - frames.mean(dim=-1, keepdim=True)  # scipy's detrend='constant'
    power = torch.fft.rfft(frames * win).abs() ** 2  # (B, T, 257)
    power = power / (SR * (win**2).sum())  # density scaling
    power[..., 1:-1] *= 2  # one-sided: double all but DC/Nyquist
    s = torch.log(power + EPS_LOG).transpose(1, 2)  # (B, 257, T)
    if standardise:
        mean = s.mean(dim=(1, 2), keepdim=True)
        std = s.std(dim=(1, 2), keepdim=True, unbiased=False)
        s = (s - mean) / (std + EPS_STD)
    return s[0] if single else s


def spectrogram_reference(x: np.ndarray) -> np.ndarray:
    """The same transform with scipy, as Sound2Scene computes it (the test oracle)."""
    _, _, s = scipy.signal.spectrogram(x, SR, nperseg=NPERSEG, noverlap=NPERSEG - HOP)
    s = np.log(s + EPS_LOG)
    return (s - s.mean()) / (s.std() + EPS_STD)


def batched(
    waves: np.ndarray | torch.Tensor, batch: int = 64, progress: bool = False, desc: str = "spectrograms"
) -> torch.Tensor:
    """Spectrograms of many equal-length clips, in batches (float32, CPU tensor)."""
    waves = torch.as_tensor(waves, dtype=torch.float32)
    # Large batches of long clips are memory-bound (measured: 10 s clips ran 3x slower at batch
    # 64 than at 8), so cap a batch at about 1.5 M samples.
    batch = max(1, min(batch, MAX_BATCH_SAMPLES // max(1, waves.shape[-1])))
    out = []
    for i in tqdm(range(0, len(waves), batch), desc=desc, disable=not progress, unit="batch"):
        out.append(spectrogram(waves[i : i + batch]))
    return torch.cat(out) if out else torch.empty(0, 257, 0)


def cached(
    path: Path,
    keys: Sequence[str],
    make: Callable[[], torch.Tensor],
    make_rows: Callable[[int, int], torch.Tensor] | None = None,
    row_dim: int = 0,
    **fingerprint,
) -> torch.Tensor:
    """Load a tensor saved under `path` if it was made for the same keys and settings, else make
    it and save it (atomically). The keys (clip stems or tuple ids) are stored with the tensor.

    Under torchrun (avgas.ranks) the ranks agree on rank 0's view of the file; `make_rows(i,
    j)` (the rows of keys[i:j], along `row_dim`) then splits the making over the ranks, every rank
    gets the whole tensor, and rank 0 alone writes it."""
    tag = hashlib.sha1(
        json.dumps({"keys": list(keys), **fingerprint}, sort_keys=True, default=str).encode()
    ).hexdigest()
    w = ranks.world()
    saved = torch.load(path, weights_only=True) if path.is_file() else None
    fresh = ranks.from_main(saved is not None and saved.get("tag") == tag)
    if fresh:
        if saved is None or saved.get("tag") != tag:  # rank 0 saw it made: read what it wrote
            saved = torch.load(path, weights_only=True)
        return saved["data"]
    if w.parallel and make_rows is not None and len(keys) >= w.size:  # every rank a non-empty slice
        mine = ranks.split(torch.arange(len(keys)), w)
        lo, hi = (int(mine[0]), int(mine[-1]) + 1) if len(mine) else (0, 0)
        part = make_rows(lo, hi).movedim(row_dim, 0).contiguous()
        data = ranks.gather(part, grad=False).movedim(0, row_dim).contiguous()
    else:
        data = make()
    if w.main:
        torch_save_atomic({"tag": tag, "keys": list(keys), "data": data}, path)
    return data

"""What the tests make themselves: files in real formats (mp4 clips by ffmpeg, an Inception file) and
separator training data of random tensors."""

import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf
import torch


def mp4(folder, name, picture, wave, seconds: float, fps: int = 10):
    """A real mp4 of a still `picture` (PIL image) with 16 kHz audio `wave` (None: no audio stream)."""
    tmp = folder / f"{name}.src"
    tmp.mkdir(parents=True, exist_ok=True)
    picture.save(tmp / "f.png")
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-loop", "1", "-framerate", str(fps), "-i", str(tmp / "f.png")]
    if wave is not None:
        sf.write(tmp / "a.wav", np.asarray(wave), 16000)
        cmd += ["-i", str(tmp / "a.wav")]
    cmd += ["-t", str(seconds), "-r", str(fps), "-pix_fmt", "yuv420p", "-c:v", "libx264"]
    cmd += ["-c:a", "aac", "-shortest"] if wave is not None else ["-an"]
    out = folder / f"{name}.mp4"
    subprocess.run(cmd + [str(out)], check=True)
    shutil.rmtree(tmp)
    return out


def sound(name: str, seconds: float) -> np.ndarray:
    """16 kHz audio of its own for each name: a tone and noise whose levels change every 0.1 s."""
    import zlib

    rng = np.random.default_rng(zlib.crc32(name.encode()))
    n = int(16000 * seconds)
    t = np.arange(n) / 16000
    steps = np.repeat(rng.uniform(0.2, 1.0, size=(int(seconds * 10) + 1, 2)), 1600, axis=0)[:n]
    tone = np.sin(2 * np.pi * rng.uniform(200, 2000) * t)
    return 0.3 * (steps[:, 0] * tone + steps[:, 1] * rng.normal(0, 0.3, n)) / 1.5


def inception_file(path):
    """torch-fidelity's Inception with random weights, saved as its release file is (a state_dict),
    built without the download its constructor would do."""
    import torch_fidelity.feature_extractor_inceptionv3 as tf

    mp = pytest.MonkeyPatch()
    mp.setattr(tf, "load_state_dict_from_url", lambda *a, **k: None)
    mp.setattr(tf.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None)
    try:
        torch.save(tf.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"]).state_dict(), path)
    finally:
        mp.undo()
    return path


def separator_data(n: int, seed: int):
    """A train.SeparatorData of n random mixtures and 16-d targets (two sources), for training tests."""
    import pandas as pd

    from avgas import train

    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.rand(*s, generator=g)  # noqa: E731
    return train.SeparatorData(
        pd.DataFrame({"i": range(n)}),
        torch.randn(n, 257, 24, generator=g),
        {"A": (r(n, 16), r(n, 16)), "V": (r(n, 16), r(n, 16))},
    )

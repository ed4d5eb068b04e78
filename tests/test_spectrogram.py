import numpy as np
import pytest
import soundfile as sf
import torch

from avgas import sounds
from avgas import spectrogram as S


@pytest.mark.parametrize("seconds", [10.0, 1.0, 0.5])
def test_torch_equals_scipy_on_random_signals(seconds):
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, S.n_samples(seconds))
    ref = S.spectrogram_reference(x)
    got = S.spectrogram(torch.tensor(x, dtype=torch.float32)).numpy()
    assert got.shape == ref.shape == (257, S.n_frames(seconds))
    assert np.abs(got - ref).max() < 1e-4


def test_ten_seconds_is_257_by_1004():
    assert S.n_frames(10.0) == 1004


@pytest.mark.parametrize("label", ["hail", "church bell ringing", "underwater bubbling", "snake hissing"])
def test_torch_equals_scipy_on_real_looking_signals(label):
    x = sounds.render(label, np.random.default_rng(0), 1.0)
    x[:2000] = 0  # a silent start: near-floor frames must agree too
    ref = S.spectrogram_reference(x.astype(np.float64))
    got = S.spectrogram(torch.from_numpy(x)).numpy()
    assert np.abs(got - ref).max() < 1e-4


def test_batched_equals_single():
    rng = np.random.default_rng(2)
    waves = rng.standard_normal((5, 8000)).astype(np.float32) * 0.1
    b = S.batched(waves, batch=2)
    for i in range(5):
        assert torch.allclose(b[i], S.spectrogram(torch.from_numpy(waves[i])), atol=1e-6)


def test_load_wave_tiles_short_clips_and_checks_the_rate(tmp_path):
    sf.write(tmp_path / "short.wav", np.linspace(-0.5, 0.5, 4000, dtype=np.float32), 16000)
    x = S.load_wave(tmp_path / "short.wav", 1.0)
    assert x.shape == (16000,) and np.allclose(x[:4000], x[4000:8000], atol=1e-4)
    sf.write(tmp_path / "rate.wav", np.zeros(4000, dtype=np.float32), 8000)
    with pytest.raises(S.AudioError, match="8000 Hz"):
        S.load_wave(tmp_path / "rate.wav", 1.0)
    (tmp_path / "bad.wav").write_bytes(b"not a wav")
    with pytest.raises(S.AudioError, match="bad.wav"):
        S.load_wave(tmp_path / "bad.wav", 1.0)


def test_cache_reuses_and_invalidates(tmp_path):
    calls = []

    def make():
        calls.append(1)
        return torch.ones(2, 3)

    S.cached(tmp_path / "c.pt", ["a", "b"], make, setting=1)
    S.cached(tmp_path / "c.pt", ["a", "b"], make, setting=1)
    assert len(calls) == 1
    S.cached(tmp_path / "c.pt", ["a", "b"], make, setting=2)
    S.cached(tmp_path / "c.pt", ["b", "a"], make, setting=2)
    assert len(calls) == 3

"""Sound designs of the synthetic world: one generator per class of Table 4.

Backgrounds are stationary textures (they fill the whole clip, like rain or a waterfall);
foregrounds are events (sirens, barks, bells) that come and go. Every design takes a random
generator, so pitch, timing and level vary from clip to clip, and returns float32 samples.
Plain numpy: a clip costs a few milliseconds.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from avgas.layout import SR  # 16 kHz mono: Sound2Scene never resamples

# ------------------------------------------------------------------------------------ helpers


def _band(x: np.ndarray, lo: float, hi: float, sr: int = SR) -> np.ndarray:
    """Band-pass by a smooth spectral mask (cheap and phase-free; fine for textures)."""
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1 / sr)
    lo_edge = 1 / (1 + np.exp(-(f - lo) / max(lo * 0.1, 5)))
    hi_edge = 1 / (1 + np.exp((f - hi) / max(hi * 0.1, 5)))
    return np.fft.irfft(spec * lo_edge * hi_edge, n=len(x))


def _brown(n: int, rng) -> np.ndarray:
    x = np.cumsum(rng.standard_normal(n))
    return x - np.convolve(x, np.ones(801) / 801, mode="same")  # remove the drift


def _tone(freq: np.ndarray | float, n: int, harmonics=(1.0,), phase0: float = 0.0) -> np.ndarray:
    """Sum of harmonics of a (possibly time-varying) fundamental, by phase accumulation."""
    f = np.broadcast_to(np.asarray(freq, dtype=np.float64), (n,))
    phase = 2 * np.pi * np.cumsum(f) / SR + phase0
    out = np.zeros(n)
    for k, a in enumerate(harmonics, start=1):
        out += a * np.sin(k * phase) * (k * f < SR / 2)  # no aliasing above Nyquist
    return out


def _decay(n: int, tau: float) -> np.ndarray:
    return np.exp(-np.arange(n) / (tau * SR))


def _place(out: np.ndarray, event: np.ndarray, start: int) -> None:
    if start >= len(out):
        return
    end = min(len(out), start + len(event))
    if start < 0:
        event, start = event[-start:], 0
        end = min(len(out), len(event))
    out[start:end] += event[: end - start]


def _poisson_times(rng, rate: float, n: int) -> np.ndarray:
    count = rng.poisson(rate * n / SR)
    return np.sort(rng.integers(0, n, count))


def _repeat_events(rng, n: int, period: float, jitter: float = 0.1):
    """Start times (samples) of a roughly periodic pattern covering the whole clip."""
    t = -rng.uniform(0, period)
    while t * SR < n:
        yield int(t * SR)
        t += period * rng.uniform(1 - jitter, 1 + jitter)


def _saw(k_max: int) -> tuple:
    return tuple(1 / k for k in range(1, k_max + 1))


def _square(k_max: int) -> tuple:
    return tuple((1 / k if k % 2 else 0.0) for k in range(1, k_max + 1))


# --------------------------------------------------------------------------------- backgrounds


def hail(rng, n):
    out = 0.15 * _band(rng.standard_normal(n), 4000, 7000)
    for t in _poisson_times(rng, rng.uniform(120, 200), n):  # ice on a roof: dense sharp clicks
        m = int(0.003 * SR)
        click = rng.standard_normal(m) * _decay(m, 0.0006) * rng.uniform(0.3, 1.5)
        _place(out, click, t)
    return _band(out, 1500, 7900)


def sea_waves(rng, n):
    t = np.arange(n) / SR
    swell = 0.55 + 0.45 * np.sin(2 * np.pi * rng.uniform(0.5, 0.9) * t + rng.uniform(0, 2 * np.pi))
    body = _band(rng.standard_normal(n), 60, 700 * rng.uniform(0.85, 1.15))
    foam = 0.35 * _band(rng.standard_normal(n), 1200, 3000) * swell**2
    return (body + foam) * swell


def _bubbles(rng, n, rate, f_lo, f_hi, dur=(0.01, 0.04)):
    out = np.zeros(n)
    for t in _poisson_times(rng, rate, n):
        m = int(rng.uniform(*dur) * SR)
        f0 = rng.uniform(f_lo, f_hi)
        sweep = f0 * (1 + rng.uniform(0.3, 0.8) * np.arange(m) / m)  # bubbles rise in pitch
        _place(out, _tone(sweep, m) * _decay(m, dur[1] / 3) * rng.uniform(0.4, 1.0), t)
    return out


def stream_burbling(rng, n):
    return _bubbles(rng, n, rng.uniform(35, 55), 500, 1300) + 0.08 * _band(rng.standard_normal(n), 300, 2500)


def volcano_explosion(rng, n):
    out = 1.0 * _band(_brown(n, rng), 20, 160)
    for _ in range(rng.integers(1, 4)):  # booms
        m = int(0.4 * SR)
        boom = (_tone(rng.uniform(35, 70), m) + 0.5 * rng.standard_normal(m)) * _decay(m, 0.12)
        _place(out, boom * 3 * np.std(out), rng.integers(0, n))
    for t in _poisson_times(rng, 25, n):  # crackle of falling rock
        m = int(0.004 * SR)
        _place(out, 0.3 * np.std(out) * rng.standard_normal(m), t)
    return out


def waterfall_burbling(rng, n):
    x = rng.standard_normal(n)
    return _band(x, 300, 5000 * rng.uniform(0.9, 1.1)) + 0.5 * _band(x, 80, 400)


def underwater_bubbling(rng, n):
    muffled = _bubbles(rng, n, rng.uniform(20, 35), 150, 420, dur=(0.03, 0.08))
    return _band(muffled, 60, 900) + 0.25 * _band(rng.standard_normal(n), 30, 250)


# --------------------------------------------------------------------------------- foregrounds


def airplane_flyby(rng, n):
    t = np.arange(n) / n
    f0 = rng.uniform(90, 130) * (1.1 - 0.25 * t)  # Doppler: the pitch falls as it passes
    engine = _tone(f0, n, _saw(12)) + 0.6 * _band(rng.standard_normal(n), 300, 2500)
    centre = rng.uniform(0.35, 0.65)
    return engine * np.exp(-(((t - centre) / 0.3) ** 2))


def ambulance_siren(rng, n):
    k = rng.uniform(0.9, 1.1)
    period = rng.uniform(0.25, 0.35)
    t = np.arange(n) / SR + rng.uniform(0, period)
    f = np.where((t / period) % 1 < 0.5, 960 * k, 770 * k)  # hi-lo two-tone
    return _tone(f, n, _square(7))


def baltimore_oriole_calling(rng, n):
    out = np.zeros(n)
    pattern = np.array([1.0, 1.25, 1.1, 1.4, 1.2]) * rng.uniform(1500, 2000)
    for s in _repeat_events(rng, n, rng.uniform(0.7, 0.9)):
        t = s
        for f in pattern[: rng.integers(3, 6)]:
            m = int(rng.uniform(0.07, 0.12) * SR)
            bend = f * (1 + 0.1 * np.sin(np.linspace(0, np.pi, m)))
            _place(out, _tone(bend, m) * np.hanning(m), t)
            t += m + int(0.03 * SR)
    return out


def church_bell_ringing(rng, n):
    ratios = (0.5, 1.0, 1.183, 1.506, 2.0, 2.514, 2.662, 3.011)  # a bell's inharmonic partials
    f0 = rng.uniform(330, 480)
    out = np.zeros(n)
    for s in _repeat_events(rng, n, rng.uniform(0.6, 0.8), 0.05):
        m = int(1.5 * SR)
        strike = sum(_tone(f0 * r, m) * _decay(m, 0.8 / (1 + i * 0.4)) / (1 + 0.3 * i) for i, r in enumerate(ratios))
        _place(out, strike, s)
    return out


def dog_barking(rng, n):
    out = np.zeros(n)
    f0 = rng.uniform(450, 650)
    for s in _repeat_events(rng, n, rng.uniform(0.25, 0.4), 0.2):
        m = int(rng.uniform(0.06, 0.12) * SR)
        env = np.minimum(1, np.arange(m) / (0.005 * SR)) * _decay(m, 0.04)
        bark = _tone(f0 * np.linspace(1.1, 0.85, m), m, _saw(8)) + 0.5 * rng.standard_normal(m)
        _place(out, _band(bark, 400, 2500)[:m] * env, s)
    return out


def fire_truck_siren(rng, n):
    t = np.arange(n) / SR
    f = 1000 * rng.uniform(0.9, 1.1) + 380 * np.sin(
        2 * np.pi * t / rng.uniform(0.7, 1.1) + rng.uniform(0, 2 * np.pi)
    )  # the wail
    return _tone(f, n, _saw(6))


def gibbon_howling(rng, n):
    out = np.zeros(n)
    for s in _repeat_events(rng, n, rng.uniform(0.22, 0.32), 0.1):
        m = int(rng.uniform(0.15, 0.22) * SR)
        glide = np.geomspace(rng.uniform(380, 480), rng.uniform(1100, 1400), m)  # the whoop
        _place(out, _tone(glide, m, (1, 0.3)) * np.hanning(m), s)
    return out


def ice_cream_truck_ice_cream_van(rng, n):
    tune = np.array([0, 4, 7, 12, 7, 4, 9, 7])  # a music-box jingle, transposed per clip
    base = rng.uniform(700, 950)
    out = np.zeros(n)
    step = rng.uniform(0.11, 0.14)
    for i, s in enumerate(_repeat_events(rng, n, step, 0.02)):
        m = int(0.35 * SR)
        f = base * 2 ** (tune[i % len(tune)] / 12)
        _place(out, _tone(f, m, (1, 0.4, 0.1)) * _decay(m, 0.08), s)
    return out


def orchestra(rng, n):
    root = rng.uniform(196, 262)
    t = np.arange(n) / SR
    out = np.zeros(n)
    for ratio in (1, 1.26, 1.5, 2, 2.52):  # a sustained major chord across sections
        vib = 1 + 0.006 * np.sin(2 * np.pi * rng.uniform(4.5, 6) * t + rng.uniform(0, 6))
        out += _tone(root * ratio * vib, n, _saw(10), rng.uniform(0, 6))
    return _band(out, 100, 4000) * np.minimum(1, t / 0.1)


def _voice(rng, n, f0, formants):
    t = np.arange(n) / SR
    vib = 1 + 0.01 * np.sin(2 * np.pi * rng.uniform(4.5, 6) * t)
    src = _tone(f0 * vib, n, _saw(25))
    return sum(_band(src, f * 0.85, f * 1.15) for f in formants)


def people_cheering(rng, n):
    t = np.arange(n) / SR
    out = _band(rng.standard_normal(n), 500, 3500) * (0.6 + 0.4 * np.sin(2 * np.pi * 1.5 * t + rng.uniform(0, 6)))
    for _ in range(3):  # a few shouting voices on top
        out += 0.5 * _voice(rng, n, rng.uniform(180, 320), (800, 1300, 2600))
    for s in _poisson_times(rng, 18, n):  # claps
        m = int(0.01 * SR)
        _place(out, 2 * rng.standard_normal(m) * _decay(m, 0.002), s)
    return out


def people_crowd(rng, n):
    out = np.zeros(n)
    t = np.arange(n) / SR
    for _ in range(6):  # babble: voices gated into syllables
        gate = (np.sin(2 * np.pi * rng.uniform(3, 6) * t + rng.uniform(0, 6)) > 0.2).astype(float)
        gate = np.convolve(gate, np.ones(160) / 160, mode="same")
        f1 = rng.choice([500, 700, 900])
        out += gate * _voice(rng, n, rng.uniform(100, 220), (f1, f1 * 2.2))
    return out


def playing_drum_kit(rng, n):
    out = np.zeros(n)
    beat = 60 / rng.uniform(110, 150)
    for i, s in enumerate(_repeat_events(rng, n, beat / 2, 0.0)):  # eighth notes
        m = int(0.2 * SR)
        if i % 4 == 0:  # kick: a falling low sine
            _place(out, _tone(np.geomspace(120, 45, m), m) * _decay(m, 0.06) * 2, s)
        elif i % 4 == 2:  # snare: a noise burst
            _place(out, _band(rng.standard_normal(m), 800, 5000) * _decay(m, 0.04) * 2.5, s)
        h = int(0.04 * SR)  # hi-hat every eighth
        _place(out, _band(rng.standard_normal(h), 6000, 7900) * _decay(h, 0.008), s)
    return out


def playing_harp(rng, n):
    chord = np.array([1, 1.26, 1.5, 2, 2.52, 3, 2.52, 2, 1.5, 1.26])  # a rolling arpeggio
    root = rng.uniform(220, 330)
    out = np.zeros(n)
    for i, s in enumerate(_repeat_events(rng, n, rng.uniform(0.09, 0.13), 0.05)):
        m = int(0.8 * SR)
        f = root * chord[i % len(chord)]
        # plucked string: upper harmonics die first
        pluck = sum(_tone(f * k, m) * _decay(m, 0.5 / k) / k for k in range(1, 7))
        _place(out, pluck, s)
    return out


def railroad_car_train_wagon(rng, n):
    out = 0.4 * _band(_brown(n, rng), 40, 300)
    for s in _repeat_events(rng, n, rng.uniform(0.35, 0.5), 0.03):
        for d in (0, int(0.11 * SR)):  # clack-clack of two axles over a rail joint
            m = int(0.03 * SR)
            _place(out, 3 * _band(rng.standard_normal(m), 500, 3000)[:m] * _decay(m, 0.006), s + d)
    return out


def sheep_bleating(rng, n):
    out = np.zeros(n)
    for s in _repeat_events(rng, n, rng.uniform(0.7, 0.9), 0.1):
        m = int(rng.uniform(0.4, 0.6) * SR)
        t = np.arange(m) / SR
        trem = 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(20, 28) * t)  # the bleat's quaver
        baa = _tone(rng.uniform(260, 340) * (1 + 0.02 * np.sin(2 * np.pi * 24 * t)), m, _saw(14))
        _place(out, _band(baa, 400, 2500)[:m] * trem * np.hanning(m), s)
    return out


def singing_choir(rng, n):
    root = rng.uniform(200, 280)
    return sum(_voice(rng, n, root * r, (700, 1150, 2600)) for r in (1, 1.26, 1.5))


def slot_machine(rng, n):
    out = np.zeros(n)
    f = rng.uniform(2000, 2600)
    for i, s in enumerate(_repeat_events(rng, n, rng.uniform(0.07, 0.09), 0.02)):
        m = int(0.06 * SR)
        _place(out, _tone(f * (1.0 if i % 2 else 1.5), m) * _decay(m, 0.02), s)  # ding-ding
    for s in _poisson_times(rng, 30, n):  # rattling coins
        m = int(0.005 * SR)
        _place(out, 0.5 * rng.standard_normal(m), s)
    return out


def snake_hissing(rng, n):
    out = np.zeros(n)
    for s in _repeat_events(rng, n, rng.uniform(0.5, 0.7), 0.1):
        m = int(rng.uniform(0.3, 0.45) * SR)
        env = np.sin(np.linspace(0, np.pi, m)) ** 0.5
        _place(out, _band(rng.standard_normal(m), 3000, 8000)[:m] * env, s)
    return out


def train_horning(rng, n):
    root = rng.uniform(250, 320)
    t = np.arange(n) / SR
    horn = sum(_tone(root * r, n, _saw(12), rng.uniform(0, 6)) for r in (1, 1.26, 1.5))
    return _band(horn, 150, 3500) * np.minimum(1, t / 0.03)


def wood_thrush_calling(rng, n):
    out = np.zeros(n)
    for s in _repeat_events(rng, n, rng.uniform(0.4, 0.55), 0.1):
        m = int(rng.uniform(0.15, 0.25) * SR)
        t = np.arange(m) / SR
        f = rng.uniform(2200, 3200) * (1 + 0.15 * np.sin(2 * np.pi * rng.uniform(25, 35) * t))  # trill
        _place(out, _tone(f, m, (1, 0.2)) * np.hanning(m), s)
    return out


DESIGNS: dict[str, Callable] = {
    "hail": hail,
    "sea waves": sea_waves,
    "stream burbling": stream_burbling,
    "volcano explosion": volcano_explosion,
    "waterfall burbling": waterfall_burbling,
    "underwater bubbling": underwater_bubbling,
    "airplane flyby": airplane_flyby,
    "ambulance siren": ambulance_siren,
    "baltimore oriole calling": baltimore_oriole_calling,
    "church bell ringing": church_bell_ringing,
    "dog barking": dog_barking,
    "fire truck siren": fire_truck_siren,
    "gibbon howling": gibbon_howling,
    "ice cream truck, ice cream van": ice_cream_truck_ice_cream_van,
    "orchestra": orchestra,
    "people cheering": people_cheering,
    "people crowd": people_crowd,
    "playing drum kit": playing_drum_kit,
    "playing harp": playing_harp,
    "railroad car, train wagon": railroad_car_train_wagon,
    "sheep bleating": sheep_bleating,
    "singing choir": singing_choir,
    "slot machine": slot_machine,
    "snake hissing": snake_hissing,
    "train horning": train_horning,
    "wood thrush calling": wood_thrush_calling,
}


LEVEL_DB, LEVEL_SPREAD_DB = -20.0, 10.0


def natural_level(rng: np.random.Generator) -> float:
    """A clip's RMS level in dBFS: -20 +- 10 dB (uniform). Recordings differ in loudness, so two
    clips added at 0 dB are up to 20 dB apart: the paper's quiet-source failure case can happen
    here as it does on VGGSound (a +-3 dB spread normalised it away)."""
    return LEVEL_DB + rng.uniform(-LEVEL_SPREAD_DB, LEVEL_SPREAD_DB)


def render(label: str, rng: np.random.Generator, seconds: float, level_db: float = -20.0) -> np.ndarray:
    """One clip of class `label`: `seconds` long at 16 kHz, RMS at `level_db` dBFS, peak < 1."""
    n = int(round(seconds * SR))
    x = np.asarray(DESIGNS[label](rng, n), dtype=np.float64)[:n]
    x = x - x.mean()
    rms = np.sqrt(np.mean(x**2)) + 1e-12
    x = x * (10 ** (level_db / 20) / rms)
    peak = np.abs(x).max()
    if peak > 0.99:  # keep within [-1, 1] (16-bit wav) without clipping the waveform
        x *= 0.99 / peak
    return x.astype(np.float32)

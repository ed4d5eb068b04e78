"""The loudness sweep says which source is found at each level (the detector, per class), with the
natural-level mix of Table 1 as its own point, for Sound2Scene, A2A and both controls."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from avgas import losses, loudness, separators

FG, BG = "a dog", "the sea"  # the words of the fake tuples' classes


class FakeDetector:
    """Finds the foreground only when it is at least as loud as the background, the background
    only when it is not much louder than the foreground (the level rides in the image's pixels)."""

    def words(self, images):
        out = []
        for im in images:
            level = float(im[0, 0, 0]) - 100  # see fake images_for
            out.append(({FG} if level >= 0 else set()) | ({BG} if level <= 10 else set()))
        return out


class FakeClip:
    def hits(self, images, wanted):
        return np.ones(len(images), bool)


@pytest.fixture
def swept(monkeypatch):
    n = 6
    tuples = pd.DataFrame({"fg_stem": list("abcdef"), "bg_stem": list("ghijkl")})
    monkeypatch.setattr(
        loudness.judges,
        "wanted",
        lambda t: {"mixed": [{FG, BG}] * n, "separated_foreground": [{FG}] * n, "separated_background": [{BG}] * n},
    )
    monkeypatch.setattr(loudness, "mixes_at", lambda p, cat, t, level: torch.full((n, 1), float(level)))
    monkeypatch.setattr(loudness, "natural_mixes", lambda p, cat, t: (torch.full((n, 1), -5.0), -5.0))
    kinds = [("A2A", 0), (losses.CONTROL, 0), (losses.CONTROL_V, 0), ("A2V", 0), ("A2A", 1)]
    monkeypatch.setattr(separators, "trained_models", lambda p: kinds)
    monkeypatch.setattr(separators, "load_separator", lambda p, kind, replica=0: kind)
    monkeypatch.setattr(loudness.separator, "separate", lambda model, mix: (mix, mix))
    monkeypatch.setattr(loudness.separator, "embed_mix", lambda fa, mix: mix)
    monkeypatch.setattr(loudness.generation, "blend", lambda a, b, lam: a)
    monkeypatch.setattr(
        loudness.generation,
        "images_for",
        lambda G, feats, seed: {k: (h[:, :1, None, None] + 100).expand(-1, 4, 4, 3).clone() for k, h in feats.items()},
    )

    class P:
        mix_lambda, seed = 0.5, 0

    return loudness.sweep(P(), None, tuples, None, None, FakeDetector(), FakeClip())


def test_each_source_is_found_per_level_and_the_natural_mix_is_its_own_point(swept):
    assert set(swept["method"]) == {"Sound2Scene", "A2A", separators.CONTROL_NAME, separators.CONTROL_V_NAME}
    assert list(dict.fromkeys(swept["level"])) == ["-20 dB", "-10 dB", "+0 dB", "+10 dB", "+20 dB", loudness.NATURAL]
    a2a = swept[swept["method"] == "A2A"].groupby("level")[["foreground found", "background found", "CRS"]].mean()
    assert a2a.loc["-20 dB"].tolist() == [0.0, 1.0, 0.0]  # the quiet foreground vanished, the background stays
    assert a2a.loc["+20 dB"].tolist() == [1.0, 0.0, 0.0]  # the quiet background vanished
    assert a2a.loc["+0 dB"].tolist() == [1.0, 1.0, 1.0]
    nat = swept[swept["level"] == loudness.NATURAL]
    assert nat["level_db"].isna().all() and (nat["natural_level_db"] == -5.0).all()
    assert sorted(swept[swept["method"] == "A2A"]["seed"].unique()) == [0, 1]


def test_presence_table_plot_and_saved_record(swept, tmp_path):
    pres = loudness.presence(swept)
    assert list(pres.columns) == ["foreground found", "background found", "CRS"]
    assert pres.index.get_level_values("level")[-1] == loudness.NATURAL
    fig = loudness.plot_presence(swept)
    assert len(fig.axes) == 4 and all(len(ax.lines) >= 4 for ax in fig.axes)  # fg, bg lines + natural markers

    class P:
        run_dir = tmp_path

    loudness.save(P(), swept, loudness.plot(swept), fig)
    rec = json.loads((tmp_path / "metrics_loudness.json").read_text(), parse_constant=lambda c: pytest.fail(c))
    assert {"foreground found", "background found"} <= set(rec["levels"][0])
    assert rec["paired"]["A2A at 0 dB - A2A at this level"]["foreground"]["-20 dB"]["difference"] == 1.0
    assert loudness.NATURAL in rec["paired"]["A2A - Sound2Scene"]["CRS"]
    assert (tmp_path / "figures" / "loudness_presence.png").is_file()

"""Issue 11, items 6 and 8: claims are stated from paired intervals, and only with trusted judges."""
import numpy as np

from avgas import loudness, results

TRUSTED = {"recall: two-class scenes (both classes)": 0.95, "recall: single-class images": 0.97,
           "false success: one class of a pair scored as both": 0.01}


def collected(judge_check, a2a, s2s):
    c = {"per_tuple": {"mixed": {"A2A": {"CRS": [a2a]}, "Sound2Scene": {"CRS": [s2s]}}},
         "judges": {"detector (CRS)": judge_check, "CLIP (R@K)": TRUSTED}}
    c["paired_ci"] = results.paired(c)
    return c


def test_a_claim_holds_only_when_its_paired_interval_is_above_zero_and_the_judge_is_trusted():
    rng = np.random.default_rng(1)
    s2s = list(rng.random(120) < 0.3)
    a2a = [bool(x) or rng.random() < 0.6 for x in s2s]
    table = results.claims(collected(TRUSTED, a2a, s2s))
    assert table.loc["A2A beats Sound2Scene on mixed CRS (Table 1)", "verdict"] == "holds"
    table = results.claims(collected(TRUSTED, s2s, s2s))
    assert table.loc["A2A beats Sound2Scene on mixed CRS (Table 1)", "verdict"] == "cannot tell"
    blind = {**TRUSTED, "false success: one class of a pair scored as both": 0.4}  # says 'both' too often
    table = results.claims(collected(blind, a2a, s2s))
    assert table.loc["A2A beats Sound2Scene on mixed CRS (Table 1)", "verdict"] == "cannot tell (judge not trusted)"


def test_loudness_levels_are_relative_to_an_equal_loudness():
    x = np.stack([0.5 * np.sin(np.arange(1600) / 5), 0.01 * np.sin(np.arange(1600) / 7)])
    rms = np.sqrt(np.mean(loudness._equal_rms(x) ** 2, axis=1))
    assert np.allclose(rms, 0.1)

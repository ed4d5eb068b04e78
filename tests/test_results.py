"""Issue 11, items 6 and 8 (the old rule, kept for comparison); the loudness levels; the ablation."""

import numpy as np

from avgas import loudness, results

TRUSTED = {
    "recall: two-class scenes (both classes)": 0.95,
    "recall: single-class images": 0.97,
    "false success: one class of a pair scored as both": 0.01,
}


def collected(judge_check, a2a, s2s):
    c = {
        "per_tuple": {"mixed": {"A2A": {"CRS": [a2a]}, "Sound2Scene": {"CRS": [s2s]}}},
        "judges": {"detector (CRS)": judge_check, "CLIP (R@K)": TRUSTED},
    }
    c["paired_ci"] = results.paired(c)
    return c


def test_the_old_protocol_told_a_claim_from_its_tuple_interval_and_a_trusted_judge():
    """Issue 11's rule, kept to set beside the new one (results.protocol_counts)."""
    rng = np.random.default_rng(1)
    s2s = list(rng.random(120) < 0.3)
    a2a = [bool(x) or rng.random() < 0.6 for x in s2s]
    claim = "A2A beats Sound2Scene on mixed CRS (Table 1)"
    assert results.old_verdicts(collected(TRUSTED, a2a, s2s))[claim] == "holds"
    assert results.old_verdicts(collected(TRUSTED, s2s, s2s))[claim] == "cannot tell"
    blind = {**TRUSTED, "false success: one class of a pair scored as both": 0.4}  # says 'both' too often
    assert results.old_verdicts(collected(blind, a2a, s2s))[claim] == "cannot tell (judge not trusted)"


def test_loudness_levels_are_relative_to_an_equal_loudness():
    x = np.stack([0.5 * np.sin(np.arange(1600) / 5), 0.01 * np.sin(np.arange(1600) / 7)])
    rms = np.sqrt(np.mean(loudness._equal_rms(x) ** 2, axis=1))
    assert np.allclose(rms, 0.1)


def test_the_ablation_sits_beside_the_run_with_seeds_averaged_on_validation():
    c = {
        "results": {"mixed": {"A2A": {"CRS": [0.6, 0.02], "R@2*": [0.4, 0.01]}}},
        "validation": {"CRS": {"mixed": {"A2A": 0.5, "A2A#1": 0.7, "Sound2Scene": 0.1}}},
        "ablation": {
            "run": "runs/x-g_blend_share0",
            "mixed": {"A2A": {"CRS": [0.3, 0.05]}},
            "validation": {"CRS": {"mixed": {"A2A": 0.2, "A2A#1": 0.4}}},
        },
    }
    t = results.ablation_table(c)
    assert t.loc["A2A", "CRS (this run)"] == "0.60 ± 0.02" and t.loc["A2A", "CRS (g_blend_share 0)"] == "0.30 ± 0.05"
    assert t.loc["A2A", "validation CRS (this run)"] == "0.60"  # mean of the two seeds
    assert t.loc["A2A", "validation CRS (g_blend_share 0)"] == "0.30"
    assert results.ablation_table({"results": {}}).empty
    v = results.validation_table(c)
    assert v.loc["A2A", "mixed"] == 0.6 and v.loc["Sound2Scene", "mixed"] == 0.1


def test_the_ablation_is_found_beside_the_run_folder(tmp_path):
    """The ablation is the other g_blend_share: 0 beside a run of 0.5, and 0.5 beside a run of 0."""
    import json

    from avgas.params import design

    run = tmp_path / "default"
    run.mkdir()
    assert results.ablation_beside(run, 0.5) == {}
    for share, suffix in ((0.5, "-g_blend_share0"), (0.0, "-g_blend_share0.5")):
        other = tmp_path / f"default{suffix}"
        other.mkdir()
        (other / "results.json").write_text(json.dumps({"results": {"mixed": {"A2A": {"CRS": [share, 0.0]}}}}))
        found = results.ablation_beside(run, share)
        assert found["run"] == str(other) and found["mixed"]["A2A"]["CRS"] == [share, 0.0]
        assert found["g_blend_share"] == design.ablation_blend_share(share) != share
    assert results.ablation_table({"results": {}, "ablation": found}).columns[1] == "CRS (g_blend_share 0.5)"


def test_table_4s_unrealistic_combinations_are_the_five_over_underwater_bubbling():
    """Issue 24: the paper's "unrealistic" combinations (Sec. 4.1, Table 4), trained on like the rest."""
    from avgas import paper

    combos = [f"{fg} + {bg}" for bg, fgs in paper.combinations().items() for fg in fgs]
    unrealistic = sorted(c for c in combos if paper.kind_of(c) == "unrealistic")
    assert len(combos) == 20 and len(unrealistic) == 5
    assert all(c.endswith(" + underwater bubbling") for c in unrealistic)


def test_tables_1_to_3_are_also_told_per_kind_of_combination():
    """Issue 24: each row of Tables 1-3 per kind (realistic, unrealistic), mean over the kind's
    combinations per seed, ± std over seeds; the per-kind table has no paper column."""
    import pytest

    runs = {
        ("mixed", "A2A", "CRS"): {
            0: {
                "dog barking + hail": 1.0,
                "people crowd + waterfall burbling": 0.5,
                "orchestra + underwater bubbling": 0.0,
            },
            1: {
                "dog barking + hail": 0.8,
                "people crowd + waterfall burbling": 0.5,
                "orchestra + underwater bubbling": 0.2,
            },
        }
    }
    pooled = {"unrealistic": {"mixed/A2A": {"IS": [1.5, 0.1]}}}
    by = results.by_kind(runs, 0, pooled)
    assert by["realistic"]["combinations"] == 2 and by["unrealistic"]["combinations"] == 1
    assert by["realistic"]["results"]["mixed"]["A2A"]["CRS"] == pytest.approx([0.7, 0.05])
    assert by["unrealistic"]["results"]["mixed"]["A2A"]["CRS"] == pytest.approx([0.1, 0.1])
    assert by["unrealistic"]["pooled"]["mixed"]["A2A"]["IS"] == [1.5, 0.1]
    c = {"results": {"mixed": {"A2A": {"CRS": [0.5, 0.0]}}}, "ci95": {}, "by kind": by}
    assert results.kinds(c) == {"all": 3, "realistic": 2, "unrealistic": 1}
    t = results.table(c, "mixed", "unrealistic")
    assert t.loc["A2A", "CRS"].startswith("0.10 ± 0.10") and t.loc["A2A", "IS"] == "1.50 ± 0.10"
    assert "here · paper" in " ".join(results.table(c, "mixed").columns)  # the whole table: beside the paper's
    assert "unrealistic combinations (1)" in results.kind_title(c, "mixed", "unrealistic")

"""The instrument's settings are chosen on validation data by avgas.selection, and the params files
hold exactly what the records chose; no params comment justifies a value by a result number."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from avgas import params, protocol, selection

ROOT = Path(__file__).resolve().parents[1]
TIERS = ("quick", "default")


@pytest.mark.parametrize("tier", TIERS)
def test_every_instrument_value_equals_the_recorded_choice(tier):
    f = ROOT / "params" / f"{tier}.yaml"
    rec = json.loads(selection.record_path(f).read_text())
    assert selection.mismatches(f, rec) == []
    # every instrument setting is either chosen in the record or named as not (yet) chosen there
    assert set(rec["settings"]) | set(rec["unselected"]) == set(selection.INSTRUMENT)
    assert not set(rec["settings"]) & set(rec["unselected"])
    for key, v in rec["settings"].items():
        assert v["choice"] in v["candidates"], key
        if key in selection.JUDGE_KEYS:  # the choice is the best validation score, ties to the cheaper
            scores = {c: v["scores"][str(c)] for c in v["candidates"]}
            assert v["choice"] == selection.choose(scores), key
        elif key == selection.SHARED_KEY:  # shared when no size's paired interval excludes 0
            holds = all(r["shared minus own, paired over the scenes"]["ci95"][1] >= 0 for r in v["per size"].values())
            assert v["choice"] == ([2, 3] if holds else None), key
        else:  # G: the cheapest candidate whose paired interval against the best holds 0
            joint = v["joint scores"]
            within = [k for k, r in joint.items() if _paired(r)["ci95"][1] >= 0]
            cheapest = min(within, key=lambda k: (float(k.split("g_steps")[1]), float(k.split("-")[0][13:])))
            assert f"{key}{v['choice']}" in cheapest, key


def _paired(row: dict) -> dict:
    return next(v for k, v in row.items() if k.startswith("minus the best"))


def test_g_takes_the_cheapest_not_worse_beyond_its_interval():
    rng = np.random.default_rng(0)
    best = (rng.random(270) < 0.6).astype(int)
    close = best.copy()
    close[np.flatnonzero(best)[:8]] = 0  # 8 scenes of 270 lost and 6 won: inside the interval
    close[np.flatnonzero(best == 0)[:6]] = 1
    far = best.copy()
    far[np.flatnonzero(best)[:60]] = 0  # 60 lost: far outside it
    cost = lambda c: c  # noqa: E731
    choice, cis = selection.choose_within({1300: close, 2600: best, 3900: best}, cost)
    assert choice == 1300 and cis[1300]["ci95"][1] >= 0 > cis[1300]["difference"]
    choice, cis = selection.choose_within({1300: far, 2600: best, 3900: best}, cost)
    assert choice == 2600 and cis[1300]["ci95"][1] < 0  # a cheaper G that is worse is not taken


def test_the_quick_tier_is_fully_selected():
    rec = json.loads(selection.record_path(ROOT / "params" / "quick.yaml").read_text())
    assert rec["unselected"] == []


def test_a_value_that_differs_from_the_record_is_caught(tmp_path):
    f = tmp_path / "quick.yaml"
    text = (ROOT / "params" / "quick.yaml").read_text()
    rec = json.loads(selection.record_path(ROOT / "params" / "quick.yaml").read_text())
    key, v = next(iter(rec["settings"].items()))
    other = next(c for c in v["candidates"] if c != v["choice"])
    f.write_text(re.sub(rf"^{key}:.*$", f"{key}: {other}", text, flags=re.M))
    assert selection.mismatches(f, rec) and key in selection.mismatches(f, rec)[0]


METRIC_WORDS = re.compile(r"\b(CRS|R@\d|FID|IS|KID|recall|false success|accuracy|score|rate)\b", re.I)


@pytest.mark.parametrize("name", ["quick.yaml", "default.yaml", "vggsound.yaml"])
def test_no_params_comment_justifies_a_value_by_a_result_number(name):
    bad = []
    for n, line in enumerate((ROOT / "params" / name).read_text().splitlines(), 1):
        comment = line.partition("#")[2]
        if METRIC_WORDS.search(comment) and re.search(r"\d\.\d|\d+ ?%", comment):
            bad.append(f"{name}:{n}: {line.strip()}")
    assert not bad, "a params comment cites a result number (the selection record holds the reasons):\n" + "\n".join(
        bad
    )


def test_the_comment_check_can_fail(tmp_path):
    line = "g_blend_share: 0.5  # chosen: mixed CRS 0.67 at 0.5, 0.17 at 0"
    comment = line.partition("#")[2]
    assert METRIC_WORDS.search(comment) and re.search(r"\d\.\d|\d+ ?%", comment)


def test_choose_prefers_the_best_then_the_cheaper():
    assert selection.choose({10: 0.5, 20: 0.7, 30: 0.7}) == 20
    assert selection.choose({10: float("nan"), 20: 0.1}) == 20
    assert selection.choose({(0.5, 10): 0.4, (0.0, 20): 0.4}, cost_key=lambda c: (c[1], c[0])) == (0.5, 10)
    with pytest.raises(selection.SelectionError):
        selection.choose({1: float("nan")})


def test_judge_score_is_lowest_recall_minus_false_success():
    check = {"recall: two-class scenes (both classes)": 0.8, "recall: single-class images": 0.95}
    check["false success: one class of a pair scored as both"] = 0.1
    check["images"] = 100
    assert selection.judge_score(check) == pytest.approx(0.7)


def test_g_is_chosen_on_generator_pairs_only_from_images_no_one_trained_on():
    p = params.load("params/quick.yaml")
    val = protocol.generator_val_pool(p)
    evaluated = {frozenset(g) for g in protocol.evaluated_pairs(p)}
    scenes = {frozenset(val.classes[c] for c in s) for s in val.sets if len(s) > 1}
    assert scenes and not scenes & evaluated
    assert scenes <= {frozenset(g) for g in protocol.generator_pairs(p)}
    seen = {hash(im.numpy().tobytes()) for im in protocol.standin_pool(p).images}
    seen |= {hash(im.numpy().tobytes()) for part in protocol.JUDGE_PARTS for im in protocol.judge_pool(p, part).images}
    assert not {hash(im.numpy().tobytes()) for im in val.images} & seen


def test_clip_trains_on_no_scene_of_an_evaluated_pair():
    p = params.load("params/quick.yaml")
    pool = protocol.clip_train_pool(p)
    evaluated = {frozenset(g) for g in protocol.evaluated_pairs(p)}
    scenes = [frozenset(pool.classes[c] for c in s) for s in pool.sets if len(s) > 1]
    assert scenes and not set(scenes) & evaluated
    singles = protocol.judge_pool(p, "train")
    assert pool.n_single == singles.n_single  # the same single-class images as the other judges
    assert len(scenes) >= len(singles.sets) - singles.n_single  # as many scenes as the evaluated pairs had


def test_the_job_chooses_on_validation_and_never_touches_a_separator(tmp_path, monkeypatch):
    from avgas import separators, train, world

    def no_separator(*a, **k):
        raise AssertionError("a selection read a separator")

    for name in ("train_separator", "train_all"):
        monkeypatch.setattr(train, name, no_separator)
    for name in ("load_separator", "embeddings"):  # a trained separator is read back only through these
        monkeypatch.setattr(separators, name, no_separator)
    monkeypatch.setattr(world, "generate", lambda p, progress=True: None)
    fake = {1: 0.2, 2: 0.9, 3: 0.9}  # a judge's validation score per candidate
    monkeypatch.setattr(
        selection,
        "_judge_report",
        lambda key, q, size, progress: {
            "validation": {"recall: x": fake[getattr(q, key)], "false success: y": 0.0, "images": 1}
        },
    )
    rates = {(0.0, 1): 0.3, (0.0, 2): 0.6, (0.5, 1): 0.6, (0.5, 2): 0.5}
    monkeypatch.setattr(
        selection,
        "select_g",
        lambda base, steps, shares, det, progress=True: {
            k: {
                "candidates": steps if k == "g_steps" else shares,
                "joint scores": {
                    selection._g_label(b, s): {"two-class rate": rates[(b, s)]} for b in shares for s in steps
                },
                "choice": {"g_steps": 1, "g_blend_share": 0.5}[k],
            }
            for k in selection.G_KEYS
        },
    )
    monkeypatch.setattr(
        selection,
        "select_stand_in_sources",
        lambda base, det, progress=True: {"candidates": selection.SHARED_CANDIDATES, "choice": [2, 3]},
    )
    f = tmp_path / "tier.yaml"
    f.write_text(f"name: tier\nrun_root: {tmp_path}\n")
    p = params.load(f)
    cands = {k: [1, 2, 3] for k in selection.JUDGE_KEYS} | {"g_steps": [1, 2], "g_blend_share": [0.0, 0.5]}
    rec = selection.select(p, f, candidates=cands, progress=False)
    assert selection.record_path(f).is_file() and rec["unselected"] == []
    assert all(rec["settings"][k]["choice"] == 2 for k in selection.JUDGE_KEYS)  # best, then cheaper
    assert rec["settings"]["g_steps"]["choice"] == 1 and rec["settings"]["g_blend_share"]["choice"] == 0.5
    partial = selection.select(p, f, only=["clip_steps"], candidates={"clip_steps": [1, 3]}, progress=False)
    assert partial["settings"]["clip_steps"]["choice"] == 3 and "g_steps" in partial["settings"]  # others kept


def test_the_command_refuses_what_it_cannot_choose_in_one_line(capsys):
    from avgas import cli

    assert cli.main(["select", "params/quick.yaml", "--only", "epochs"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "epochs" in err and "clip_steps" in err
    assert cli.main(["select", "params/vggsound.yaml"]) == 1
    assert "synthetic world" in capsys.readouterr().err


def test_g_candidates_share_f_v_and_f_a_and_key_g_as_a_run_does(tmp_path, monkeypatch):
    """Only G differs between the candidates: every candidate keys the same f_V and f_A, and its G the
    key a run with its settings gives G, so a G trained by an earlier call or by a run is reused."""
    from types import SimpleNamespace

    seen = []
    monkeypatch.setattr(selection.judges.detector, "judge", lambda *a, **k: SimpleNamespace(conf=0.05))
    monkeypatch.setattr(selection.protocol, "generator_val_pool", lambda base: None)

    def rate(q, det, pool, progress=True):
        seen.append(q)
        return {"two-class rate": 0.5, "scenes": 2, "hits": [1, 0]}

    monkeypatch.setattr(selection, "g_two_class_rate", rate)
    base = params.load("params/quick.yaml").replace(run_root=str(tmp_path))
    selection.select_g(base, [1, 2], [0.0, 0.5], 3, progress=False)
    keys = [selection.instrument_keys(q) for q in seen]
    assert len(seen) == 4 and {k["f_V"] for k in keys} == {selection.instrument_keys(base)["f_V"]}
    assert len({k["f_A"] for k in keys}) == 1
    as_runs = {
        selection.instrument_keys(base.replace(g_blend_share=q.g_blend_share, g_steps=q.g_steps))["G"] for q in seen
    }
    assert {k["G"] for k in keys} == as_runs and len(as_runs) == 4

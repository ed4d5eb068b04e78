"""The stage table (avgas.stages): steps run side by side count once, with their wall time."""

import json

from avgas import stages


def _run(tmp_path, steps):
    run = tmp_path / "r"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"notebooks": {"03_separator": {"seconds": 100.0, "started": "2026"}}}))
    (run / "stages.jsonl").write_text(
        "".join(json.dumps({"notebook": "03_separator", "ended": "2027", **s}) + "\n" for s in steps)
    )
    return run


def test_steps_run_side_by_side_count_once(tmp_path):
    run = _run(
        tmp_path,
        [
            {"step": "separator A2A", "seconds": 55.0, "within": "separator trainings side by side"},
            {"step": "separator A2V", "seconds": 50.0, "within": "separator trainings side by side"},
            {"step": "separator trainings (2, 2 side by side)", "seconds": 60.0},
        ],
    )
    rows = {r["stage"]: r["seconds"] for r in stages.rows(run)}
    assert rows["rest of the notebook"] == 40.0  # 100 s of wall time, 60 of them the two jobs
    text = stages.table([run])
    assert text.splitlines()[-1].split()[1] == "100.0"  # the total is the wall time, not 100 + 105
    assert "  separator A2A" in text and "(in)" in text


def test_time_spent_waiting_for_another_runs_build_is_shown_as_idle(tmp_path):
    from avgas import instrument

    run = _run(tmp_path, [{"step": f"{instrument.WAITING} f_A (process 7 (other))", "seconds": 30.0}])
    last = stages.table([run]).splitlines()[-1]
    assert last.startswith("of which waiting for another run's build")
    assert last.split()[-5:] == ["30.0", "30.0%", "(work:", "1.2", "min)"]  # 100 s of wall time, 30 of them idle

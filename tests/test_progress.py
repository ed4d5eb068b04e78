"""Issue 10, item 12: long steps write progress lines (with a time-left estimate) to the run's log,
and the runner copies them to the job's stderr; short steps stay quiet."""

import io
import json
import time

from avgas import progress


def test_a_long_step_reports_as_it_goes_and_a_short_one_stays_quiet(tmp_path, monkeypatch):
    log = tmp_path / "log.txt"
    monkeypatch.setenv(progress.ENV_LOG, str(log))
    monkeypatch.setenv(progress.ENV_SECONDS, "0.5")
    monkeypatch.setenv(progress.ENV_NOTEBOOK, "02_pretrained")
    for _ in progress.tqdm(range(5), desc="quick step"):
        pass
    assert not log.exists()
    echoed = io.StringIO()
    with progress.Echo(log, stream=echoed, poll=0.1):
        for _ in progress.tqdm(range(16), desc="G stand-in", unit="step"):
            time.sleep(0.2)
    lines = log.read_text().splitlines()
    assert all(progress.MARK + "[02_pretrained] G stand-in: " in ln for ln in lines)
    middle = [ln for ln in lines if "left" in ln]
    assert len(middle) >= 2 and "/16 step (" in middle[0]  # first after 2 s, then every 0.5 s
    assert "done, 16/16 step in 0:0" in lines[-1]
    assert echoed.getvalue().splitlines() == ["[avgas] " + ln.split(progress.MARK, 1)[1] for ln in lines]


def test_outside_a_batch_run_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.delenv(progress.ENV_LOG, raising=False)
    for _ in progress.tqdm(range(3), desc="x"):
        time.sleep(0.01)
    assert list(tmp_path.iterdir()) == []


def test_a_bar_closed_again_later_says_nothing_more(tmp_path, monkeypatch):
    # tqdm.notebook closes a bar again when its widget goes; that second close came long after a
    # quick step and printed "reading audio: done, 998/998 clip in 30:44" for a 0.2 s step
    log = tmp_path / "log.txt"
    monkeypatch.setenv(progress.ENV_LOG, str(log))
    monkeypatch.setattr(progress, "QUIET", 0.3)
    bar = progress.tqdm(range(5), desc="reading audio", unit="clip")
    for _ in bar:
        pass
    time.sleep(0.4)
    bar.close()
    assert not log.exists() or "reading audio" not in log.read_text()
    stages = (tmp_path / "stages.jsonl").read_text().splitlines()
    assert len(stages) == 1 and json.loads(stages[0])["seconds"] < 0.3

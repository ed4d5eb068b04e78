"""The main job (avgas.main_job): two lanes side by side, each run's lines tagged, a failure stops
its lane and is the job's exit code, and the main run runs once more at the end."""

import io
import re
import sys
import time
from pathlib import Path

from avgas import main_job

ROOT = Path(__file__).resolve().parents[1]


def _py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_lanes_run_side_by_side_tagged_and_the_main_run_again(monkeypatch, tmp_path):
    stamp = tmp_path / "t"

    def log(tag):
        return _py(
            f"import time; open({str(stamp)!r}, 'a').write('{tag} %f\\n' % time.time()); time.sleep(1); "
            f"print('Executing: 5%', end='\\r'); print('hi from {tag}', end='\\r'); print('done {tag}'); "
            f"print('Executing: 50%|##|', end='\\r'); print('[avgas] [01_data] step {tag}')"
        )

    monkeypatch.setattr(main_job, "lanes", lambda f: [[("a", log("a")), ("a2", log("a2"))], [("b", log("b"))]])
    out = io.StringIO()
    t0 = time.perf_counter()
    assert main_job.run(tmp_path / "p.yaml", out) == 0
    text = out.getvalue()
    assert "[a] done a" in text and "[a2] done a2" in text and "[b] done b" in text and "hi from" not in text
    assert "[a] [avgas] [01_data] step a" in text and "Executing" not in text
    starts = dict(line.split() for line in stamp.read_text().splitlines()[:3])
    assert abs(float(starts["a"]) - float(starts["b"])) < 0.9  # side by side, not one after the other
    assert float(starts["a2"]) >= float(starts["a"]) + 1  # a lane runs its steps in order
    assert [line.split()[0] for line in stamp.read_text().splitlines()][-1] == "a"  # the main run again
    assert time.perf_counter() - t0 < 6
    assert re.search(r"lanes ended after \(min\): lane 1 0\.[0-9], lane 2 0\.[0-9]; then", text)  # each lane's end


def test_a_failing_run_stops_its_lane_and_is_the_exit_code(monkeypatch, tmp_path):
    monkeypatch.setattr(
        main_job,
        "lanes",
        lambda f: [[("a", _py("import sys; sys.exit(3)")), ("a2", _py("print('ran')"))], [("b", _py("print('b')"))]],
    )
    out = io.StringIO()
    assert main_job.run(tmp_path / "p.yaml", out) == 3
    assert "[a] failed (exit code 3)" in out.getvalue() and "[a2]" not in out.getvalue()
    assert "lanes ended after" in out.getvalue() and "main run again" not in out.getvalue()  # it was not


def test_the_lanes_make_the_runs_the_book_shows(tmp_path):
    """The runs `make book` builds and times (its stage table reads `main_job --runs`) are the runs
    the lanes make, each under the name its --sweep gives; the ablation is the other g_blend_share."""
    from avgas import params

    f = ROOT / "params" / "default.yaml"
    todo = main_job.lanes(f)
    made = {tag for lane in todo for tag, _ in lane}
    assert {d.name for d in main_job.run_folders(f)} == made and len(made) == 3
    assert re.search(
        r"avgas\.stages \$\$\(\$\(PY\) -m avgas\.main_job --runs params/default\.yaml\)",
        (ROOT / "Makefile").read_text(),
    )
    p = params.load(f)
    swept = {
        tag: params.sweep(p, cmd[cmd.index("--sweep") + 1])[0] for lane in todo for tag, cmd in lane if "--sweep" in cmd
    }
    assert all(q.name == tag for tag, q in swept.items())
    assert sorted(q.g_blend_share != p.g_blend_share for q in swept.values()) == [False, True]
    assert all("threads=1" in cmd for lane in todo for _, cmd in lane)
    # a step that prepares a run stops with --until (finished notebooks skipped), never --only
    assert not any("--only" in cmd for lane in todo for _, cmd in lane)
    assert any(cmd[cmd.index("--until") + 1] == "02" for lane in todo for _, cmd in lane if "--until" in cmd)


def test_a_step_waits_for_an_earlier_step_of_the_same_run_in_the_other_lane(monkeypatch, tmp_path):
    """Lane 2 prepares run x (as it trains the ablation's G); lane 1's x, due sooner, starts only
    after that: one writer per run folder."""
    stamp = tmp_path / "t"

    def log(tag, seconds):
        return _py(
            f"import time; open({str(stamp)!r}, 'a').write('start {tag} %f\\n' % time.time()); time.sleep({seconds}); "
            f"open({str(stamp)!r}, 'a').write('end {tag} %f\\n' % time.time())"
        )

    monkeypatch.setattr(
        main_job,
        "lanes",
        lambda f: [[("a", log("a", 0.1)), ("x", log("x1", 0.1))], [("x", log("x2", 2)), ("b", log("b", 0.1))]],
    )
    assert main_job.run(tmp_path / "p.yaml", io.StringIO()) == 0
    at = {f"{w} {t}": float(s) for w, t, s in (line.split() for line in stamp.read_text().splitlines())}
    assert at["start x1"] >= at["end x2"]
    assert at["start x2"] < at["end a"] + 1  # the lanes still run side by side

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")
os.environ.setdefault("AVGAS_ROOT", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from avgas import params  # noqa: E402

# A small world for unit tests: 3 combinations, 6 clips per class, 0.5 s clips.
SMALL = {
    "combinations": {"hail": ["dog barking", "train horning"], "sea waves": ["people cheering"]},
    "clips_per_class": 6,
    "clip_seconds": 0.5,
    "image_size": 32,
    "train_tuples": 12,
    "val_tuples": 3,
    "test_tuples": 6,
    "test_fraction": 0.34,
    "val_fraction": 0.25,
    "unseen_pairs": 1,  # of the 3 other pairings: 2 stay for the generator
}


@pytest.fixture
def small_params(tmp_path):
    return params.load("params/quick.yaml", {**SMALL, "run_root": str(tmp_path), "name": "t"})


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory):
    """The quick tier as a user runs it, killed once in the middle and started again.

    AVGAS_TEST_QUICK_RUN=<a finished quick run folder> reuses that run instead (for working on
    the notebook tests; the kill-and-restart test is skipped then)."""
    reuse = os.environ.get("AVGAS_TEST_QUICK_RUN")
    if reuse:
        return Path(reuse).resolve()
    root = tmp_path_factory.mktemp("runs")
    # progress_seconds and resume change how a run proceeds, not what it computes
    cmd = [
        sys.executable,
        "-m",
        "avgas",
        "run",
        "params/quick.yaml",
        "-p",
        f"run_root={root}",
        "-p",
        "progress_seconds=1",
    ]
    # the three-source sibling (runs/quick-sources3/), which notebook 10 of the run reads, side by
    # side with the run, one torch thread each, as `make book` runs them (avgas/main_job.py)
    cmd += ["-p", "threads=1"]
    k3_log = open(root / "sources3.log", "w")  # noqa: SIM115 - closed when the sibling is waited for
    k3 = subprocess.Popen(cmd + ["--sweep", "sources=3"], stdout=k3_log, stderr=subprocess.STDOUT)
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    manifest = root / "quick" / "run.json"
    deadline = time.time() + 600
    while time.time() < deadline and first.poll() is None:
        done = json.loads(manifest.read_text())["notebooks"] if manifest.is_file() else {}
        if done.get("02_pretrained", {}).get("status") == "finished":
            break
        time.sleep(0.5)
    try:
        os.killpg(first.pid, signal.SIGKILL)  # the whole job, kernels included, as a lost node would
    except ProcessLookupError:
        pass
    first.wait()
    # the README's recipe for a killed run
    r = subprocess.run(cmd + ["-p", "resume=true"], capture_output=True, text=True)
    # what the restart did is checked by its own test (test_a_killed_run_continues_...), not here:
    # an assert in a session fixture would turn one failure into an error of every notebook test
    for suffix, text in ((".rc", str(r.returncode)), (".stdout", r.stdout), (".stderr", r.stderr)):
        (root / "restart").with_suffix(suffix).write_text(text)
    k3.wait()
    k3_log.close()
    # notebooks 08 and 10 again, now that the sibling is finished (a finished run's other notebooks are skipped)
    again = subprocess.run(cmd, capture_output=True, text=True)
    (root / "again.log").write_text(again.stdout + again.stderr)
    return root / "quick"


# The suite never writes into the checkout's runs/ (a test that forgets run_root once left a world
# store, a cache and lock files there). Checked where runs/ did not exist when the suite started (a
# fresh clone, CI): a developer's own runs/ may be written by a make book of theirs meanwhile.
_RUNS = Path(__file__).resolve().parents[1] / "runs"
_RUNS_BEFORE = _RUNS.exists()


def pytest_sessionfinish(session, exitstatus):
    if _RUNS_BEFORE or not _RUNS.exists():
        return
    left = sorted(str(f.relative_to(_RUNS.parent)) for f in _RUNS.rglob("*") if f.is_file())
    print(f"\nthe tests wrote into the checkout's runs/ (give them a run_root under tmp_path): {left[:10]}")
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


# The suite's time per test file, printed at its end (issue 22: make test stays well inside CI's
# limit; which files cost what is read here, not asserted in a timed test). A session fixture's
# time counts for the file of the first test that needed it.
_FILE_SECONDS: dict[str, float] = {}


def pytest_runtest_logreport(report):
    f = report.nodeid.split("::", 1)[0]
    _FILE_SECONDS[f] = _FILE_SECONDS.get(f, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter):
    if not _FILE_SECONDS:
        return
    total = sum(_FILE_SECONDS.values())
    terminalreporter.section("time per test file")
    for f, s in sorted(_FILE_SECONDS.items(), key=lambda kv: -kv[1]):
        terminalreporter.write_line(f"{s:8.1f} s {100 * s / total:5.1f}%  {f}")
    terminalreporter.write_line(f"{total:8.1f} s total ({total / 60:.1f} min)")

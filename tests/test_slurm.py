"""The SLURM array script, run as a scheduler would run one task (no SLURM needed)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
SCRIPT = Path("scripts/slurm/avgas-array.sbatch")


def _task(tmp_path, lines, task):
    runs = tmp_path / "runs.txt"
    runs.write_text("# a comment, then runs\n\n" + "\n".join(lines) + "\n")
    env = {
        **os.environ,
        "SLURM_ARRAY_TASK_ID": str(task),
        "SLURM_ARRAY_JOB_ID": "42",
        "SLURM_SUBMIT_DIR": str(Path.cwd()),
        "AVGAS_PYTHON": sys.executable,
    }
    return subprocess.run(["bash", str(SCRIPT), str(runs)], env=env, capture_output=True, text=True)


def test_an_array_task_runs_its_line_and_records_the_job(tmp_path):
    lines = [
        f"params/quick.yaml -p run_root={tmp_path} -p name=a --only 01",
        f"params/quick.yaml -p run_root={tmp_path} -p name=b -p seed=1 --only 01",
    ]
    r = _task(tmp_path, lines, 2)
    assert r.returncode == 0, r.stderr[-2000:]
    run = tmp_path / "b"
    assert (run / "01_data.ipynb").is_file() and not (tmp_path / "a").exists()
    assert "seed: 1" in (run / "params.yaml").read_text()
    assert (run / "slurm" / "avgas-array.sbatch").is_file()
    assert "name=b" in (run / "slurm" / "task-42_2.txt").read_text()


def test_a_bad_line_fails_before_any_work(tmp_path):
    r = _task(tmp_path, [f"params/quick.yaml -p run_root={tmp_path} -p epoch=3"], 1)
    assert r.returncode != 0 and "epoch" in r.stderr and not (tmp_path / "quick").exists()
    assert _task(tmp_path, ["params/quick.yaml"], 5).returncode == 2  # no such line

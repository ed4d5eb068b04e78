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


# ------------------------------------------------------- issue 15: the multi-node DDP template

DDP = Path("scripts/slurm/avgas-ddp.sbatch")
SRUN = """#!/bin/bash
# srun, as SLURM would run it: --ntasks copies of the command, each with its SLURM_PROCID
echo "$@" > "$STUB_LOG"
n=1
for a in "$@"; do case $a in --ntasks=*) n=${a#--ntasks=};; esac; done
while [[ $1 == --* ]]; do shift; done
pids=()
for ((i = 0; i < n; i++)); do SLURM_PROCID=$i SLURM_NODEID=$i "$@" & pids+=($!); done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=$?; done
exit $rc
"""


def _ddp_job(tmp_path, *args, nodes=2):
    import stat

    bin_ = tmp_path / "bin"
    bin_.mkdir(exist_ok=True)
    (bin_ / "srun").write_text(SRUN)
    (bin_ / "scontrol").write_text("#!/bin/bash\necho localhost\necho localhost\n")
    for f in bin_.iterdir():
        f.chmod(f.stat().st_mode | stat.S_IEXEC)
    env = {
        **os.environ,
        "PATH": f"{bin_}:{os.environ['PATH']}",
        "STUB_LOG": str(tmp_path / "srun.log"),
        "SLURM_JOB_ID": "7",
        "SLURM_NNODES": str(nodes),
        "SLURM_JOB_NODELIST": "node[01-02]",
        "SLURM_CPUS_PER_TASK": "1",
        "AVGAS_PROCS_PER_NODE": "1",
        "AVGAS_DDP_PORT": str(29500 + os.getpid() % 1000),
        "SLURM_SUBMIT_DIR": str(Path.cwd()),
        "AVGAS_PYTHON": sys.executable,
    }
    return subprocess.run(["bash", str(DDP), *args], env=env, capture_output=True, text=True, timeout=900)


def test_the_ddp_template_trains_across_two_nodes(quick_run, tmp_path):
    """Two 'nodes' (two torchrun agents meeting at one rendezvous, srun stubbed) train the quick
    tier's A2A separator into the run folder, as one process would lay it out."""
    import shutil

    import torch
    from test_distributed import TRAINING_ONLY

    shutil.copytree(quick_run, tmp_path / "runs" / "quick", ignore=shutil.ignore_patterns(*TRAINING_ONLY))
    run = tmp_path / "runs" / "quick"
    over = ["-p", f"run_root={run.parent}", "-p", "alignments=[A2A]", "-p", "separator_seeds=1", "-p", "control=false"]
    r = _ddp_job(tmp_path, str(run / "params.yaml"), *over)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert "2 node(s) x 1 rank(s), rendezvous localhost:" in r.stdout
    srun = (tmp_path / "srun.log").read_text()
    assert "--nnodes=2" in srun and "--rdzv_backend=c10d" in srun and "-m avgas train" in srun
    ck = torch.load(run / "checkpoints" / "separator_A2A" / "last.pt", weights_only=False)
    assert ck["world_size"] == 2 and ck["epoch"] == 1
    assert (run / "slurm" / "avgas-ddp.sbatch").is_file()


def test_the_ddp_template_validates_params_before_any_gpu(tmp_path):
    r = _ddp_job(tmp_path, "params/quick.yaml", "-p", f"run_root={tmp_path}", "-p", "epoch=3")
    assert r.returncode != 0 and "epoch" in r.stderr
    assert not (tmp_path / "srun.log").exists()  # srun never ran
    r = _ddp_job(tmp_path, "params/quick.yaml", "-p", f"run_root={tmp_path}", "-p", "name=none")
    assert r.returncode == 2 and "notebooks 01,02 first" in r.stderr and not (tmp_path / "srun.log").exists()

"""Issue 23, items 4-9: nothing wrong in silence (labels, skips, short data, sweeps and -p, hints,
interrupts)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SMALL

from avgas import check, cli, course, data, params, progress, runner, world

ROOT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------------- item 4


def test_a_label_differing_in_case_or_spaces_is_skipped_with_did_you_mean(small_params):
    world.generate(small_params, progress=False)
    csv = small_params.metadata_path
    lines = csv.read_text().splitlines()
    n = next(i for i, ln in enumerate(lines) if ",hail," in ln and ln.endswith("train"))
    lines[n] = lines[n].replace(",hail,", ",Hail ,")
    csv.write_text("\n".join(lines) + "\n")
    cat = data.catalogue(small_params, screen=False)
    found = [why for where, why in cat.attrs["skipped"] if where == f"metadata.csv:{n + 1}"]
    assert found and "did you mean 'hail'" in found[0], cat.attrs["skipped"]


# ----------------------------------------------------------------------------------- item 5


def test_skip_reasons_reach_the_log_where_batch_users_look(small_params, tmp_path, monkeypatch):
    world.generate(small_params, progress=False)
    gone = sorted((small_params.data_dir / "audios").iterdir())[0]
    gone.unlink()
    log = tmp_path / "log.txt"
    monkeypatch.setenv(progress.ENV_LOG, str(log))
    data.catalogue(small_params, screen=False)
    text = log.read_text()
    assert progress.MARK in text and "1 clips or csv lines skipped (no audio file: 1)" in text, text
    assert f"skipped {gone.stem}: no audio file" in text
    data.catalogue(small_params, screen=False)  # the same skips are not repeated by every notebook
    assert log.read_text() == text


# ----------------------------------------------------------------------------------- item 6


def test_check_all_flags_a_data_folder_whose_skips_leave_a_class_short(small_params):
    world.generate(small_params, progress=False)
    p = params.load(
        "params/quick.yaml",
        {**SMALL, "world": "vggsound", "data_root": str(small_params.data_dir), "run_root": str(small_params.run_root)},
    )
    cat = data.catalogue(p, screen=False)
    for a in cat[(cat["label"] == "hail") & (cat["split"] == "test")]["audio"]:
        Path(a).write_bytes(b"RIFF not a wav")
    row = check.check(p, sample=None).loc["clip content"]
    assert row["status"] == "wrong", row["detail"]
    assert "hail: train" in row["detail"] and "test 0" in row["detail"] and "hail" in row["detail"].split("(")[-1]


# ----------------------------------------------------------------------------------- item 7


def test_repeated_sweeps_make_a_grid_and_a_repeated_p_key_is_an_error(capsys):
    rc = cli.main(["run", "params/quick.yaml", "--sweep", "seed=0,1", "--sweep", "epochs=1,3", "--print-run-dir"])
    out = capsys.readouterr().out.split()
    assert rc == 0 and [Path(d).name for d in out] == [
        "quick-seed0-epochs1",
        "quick-seed0-epochs3",
        "quick-seed1-epochs1",
        "quick-seed1-epochs3",
    ]
    assert cli.main(["run", "params/quick.yaml", "--sweep", "seed=0,1", "--sweep", "seed=2", "--print-run-dir"]) == 2
    assert "--sweep seed is given twice" in capsys.readouterr().err
    assert cli.main(["run", "params/quick.yaml", "-p", "seed=1", "-p", "seed=2", "--print-run-dir"]) == 2
    assert "-p seed is given twice (1 and 2)" in capsys.readouterr().err


# ----------------------------------------------------------------------------------- item 8


def test_grade_on_a_missing_file_says_so(tmp_path):
    g = course.grade_one(tmp_path / "autograder.zip", tmp_path / "alice.ipynb")
    assert g.error.startswith("file not found")


def test_only_03_on_a_fresh_run_names_the_notebooks_it_needs(small_params):
    with pytest.raises(runner.RunError, match="reads what 01_data, 02_pretrained write.*--only 01,02,03"):
        runner.run(small_params, ["03"])
    assert not (small_params.run_dir / "03_separator.ipynb").exists()


def test_validate_on_an_unfinished_run_names_the_run_command(small_params, capsys):
    small_params.run_dir.mkdir(parents=True)
    params.save(small_params, small_params.run_dir / "params.yaml")
    (small_params.run_dir / "run.json").write_text(json.dumps({"notebooks": {"01_data": {"status": "finished"}}}))
    assert cli.main(["validate", str(small_params.run_dir)]) == 1
    err = capsys.readouterr().err
    assert "has not finished 02_pretrained, 03_separator" in err and "python -m avgas run" in err, err
    assert "prepare-vggsound" not in err and "Sound2Scene" not in err


# ----------------------------------------------------------------------------------- item 9


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_run_says_so_in_the_log_and_how_to_continue(tmp_path, sig):
    over = {**SMALL, "run_root": str(tmp_path), "name": "t", "threads": 1, "progress_seconds": 1}
    cmd = [sys.executable, "-m", "avgas", "run", "params/quick.yaml"]
    cmd += sum((["-p", f"{k}={json.dumps(v) if isinstance(v, dict) else v}"] for k, v in over.items()), [])
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # Ctrl-C reaches it (see test_cli_errors)
    )
    log = tmp_path / "t" / "log.txt"
    deadline = time.time() + 240
    while time.time() < deadline and not (log.is_file() and "running 02_pretrained" in log.read_text()):
        time.sleep(0.5)
    time.sleep(3)  # inside notebook 02's stand-in training
    os.killpg(proc.pid, sig)  # what Ctrl-C in a terminal, or a job's time limit, does
    _, err = proc.communicate(timeout=120)
    how = "SIGTERM" if sig == signal.SIGTERM else "Ctrl-C"
    assert proc.returncode == (143 if sig == signal.SIGTERM else 1), err[-2000:]
    assert f"avgas: interrupted ({how})" in err and "Run the same command again" in err, err[-2000:]
    text = log.read_text()
    assert f"02_pretrained.ipynb interrupted ({how})" in text and "run the same command again" in text, text[-2000:]
    after = text.split("running 02_pretrained", 1)[1]
    assert ": done," not in after.split("interrupted")[0] or "stopped at" in after, after
    m = json.loads((tmp_path / "t" / "run.json").read_text())
    assert m["notebooks"]["02_pretrained"]["status"] == "interrupted"


def test_a_progress_bar_closed_early_is_never_reported_done():
    stopped = progress.line("G stand-in", 3, 10, 5.0, "step", done=True)
    assert "stopped at 3/10 step" in stopped and "done" not in stopped
    assert "done, 10/10 step" in progress.line("G stand-in", 10, 10, 5.0, "step", done=True)

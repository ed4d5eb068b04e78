"""Issue 10, items 6-8 and 10: errors a user can act on are one line (exit 1, or 2 for params),
never a traceback; a killed run continues with -p resume=true; one process per run folder."""

import json
import os
import resource
import signal
import subprocess
import sys
import time

import pytest

from avgas import checkpoints, judges, params, paths

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def avgas(*args, preexec=None, env=None, timeout=300):
    e = {**os.environ, "AVGAS_ROOT": ROOT, "MPLCONFIGDIR": "/tmp/avgas-test-mpl", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "avgas", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=e,
        preexec_fn=preexec,
        timeout=timeout,
    )


def one_line_error(r, code):
    """The error: one line starting 'avgas: ', the last thing on stderr (progress lines before it
    are the run's own), exit code `code`, no traceback."""
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert r.returncode == code, (r.returncode, r.stderr[-2000:])
    errors = [ln for ln in lines if ln.startswith("avgas: ")]
    assert "Traceback" not in r.stderr and len(errors) == 1 and lines[-1] == errors[0], r.stderr[-2000:]
    return errors[0]


# ------------------------------------------------------------------------------------- params (7)


def test_params_nan_and_infinity_are_impossible_values():
    for bad in (".nan", ".inf", "-.inf", "nan"):
        with pytest.raises(params.ParamsError, match="finite"):
            params.load("params/quick.yaml", [f"lr={bad}"])


def test_params_accept_1e_minus_3_for_a_float(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("name: t\nlr: 1e-3\nweight_decay: 2E-5\n")  # YAML 1.1 reads these as strings
    p = params.load(f)
    assert p.lr == 0.001 and p.weight_decay == 2e-5
    assert params.load(None, ["lr=1e-3"]).lr == 0.001
    with pytest.raises(params.ParamsError, match="'lr' must be float"):
        params.load(None, ["lr=fast"])


def test_params_empty_file_duplicate_keys_and_non_utf8_are_refused(tmp_path):
    cases = {
        "empty.yaml": b"# only a comment\n",
        "dup.yaml": b"name: a\nepochs: 2\nepochs: 3\n",
        "latin.yaml": "name: caf\xe9\n".encode("latin-1"),
    }
    wants = {"empty.yaml": "empty", "dup.yaml": "'epochs' is given twice", "latin.yaml": "not UTF-8"}
    for name, raw in cases.items():
        (tmp_path / name).write_bytes(raw)
        line = one_line_error(avgas("params", tmp_path / name), 2)
        assert wants[name] in line and name in line


def test_a_malformed_override_is_one_line():
    assert "not valid YAML" in one_line_error(avgas("params", "params/quick.yaml", "-p", "epochs=[1,"), 2)
    assert "key=value" in one_line_error(avgas("params", "params/quick.yaml", "-p", "epochs"), 2)


def test_prepared_csv_cannot_be_vggsound_csv():
    with pytest.raises(params.ParamsError, match="vggsound_csv.*same file"):
        params.load("params/vggsound.yaml", ["vggsound_csv=data/x.csv", "metadata_csv=data/x.csv"])


# --------------------------------------------------------------------------------- weight files (6)


def test_a_zero_byte_weight_file_is_named_not_an_index_error(tmp_path):
    empty = tmp_path / "sound2scene.pth"
    empty.touch()
    for load in (checkpoints.load_audio_encoder, checkpoints.load_image_encoder):
        with pytest.raises(checkpoints.CheckpointError, match="empty"):
            load(empty)
    (tmp_path / "icgan").mkdir()
    (tmp_path / "icgan" / "state_dict_best0.pth").touch()
    with pytest.raises(checkpoints.CheckpointError, match="state_dict_best0.pth: the file is empty"):
        checkpoints.load_generator(tmp_path / "icgan")
    r = avgas("check", "params/quick.yaml", "-p", f"sound2scene_checkpoint={empty}")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "empty (0 bytes" in r.stdout


def test_a_detector_file_with_another_suffix_is_refused_by_name(tmp_path):
    f = tmp_path / "yolov8x-worldv2.pth"
    f.write_bytes(b"x" * 10)
    with pytest.raises(checkpoints.CheckpointError, match="ends in .pt.*detector_weights"):
        judges.load_ultralytics_file(f)


# ------------------------------------------------------------------------------ run folders (6, 10)


def test_a_second_process_on_the_same_run_folder_is_refused(tmp_path):
    run_dir = tmp_path / "quick"
    with paths.exclusive(run_dir, "a test holding the folder"):
        line = one_line_error(avgas("run", "params/quick.yaml", "-p", f"run_root={tmp_path}", "--only", "01"), 1)
    assert "in use by another avgas process" in line and "a test holding the folder" in line
    assert not (run_dir / "run.json").exists()  # refused before any work


def _no_root_override():
    """Root writes into a read-only folder anyway: drop that capability (CAP_DAC_OVERRIDE) before exec."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(24, 1, 0, 0, 0)  # PR_CAPBSET_DROP, CAP_DAC_OVERRIDE


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux prctl")
def test_a_read_only_run_folder_is_one_line(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o555)
    drop = _no_root_override if os.geteuid() == 0 else None
    line = one_line_error(avgas("world", "params/quick.yaml", "-p", f"run_root={ro}", preexec=drop), 1)
    assert "Permission denied" in line and "cannot write there" in line
    assert list(ro.iterdir()) == []


@pytest.mark.slow
def test_a_full_disk_is_one_line_leaves_no_litter_and_no_running_notebook(tmp_path):
    """The disk fills while notebook 01 writes its spectrogram cache (a 1 MB file-size limit, which
    fails writes with EFBIG as a full disk fails them with ENOSPC); then the run continues."""

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))

    r = avgas("run", "params/quick.yaml", "-p", f"run_root={tmp_path}", "--only", "01", preexec=limit)
    line = one_line_error(r, 1)
    assert "01_data" in line and ("File too large" in line or "No space" in line), line
    run = tmp_path / "quick"
    m = json.loads((run / "run.json").read_text())
    assert m["notebooks"]["01_data"]["status"] == "failed"
    assert not [f for f in run.rglob("*") if f.name.endswith(".tmp")]
    r = avgas("run", "params/quick.yaml", "-p", f"run_root={tmp_path}", "--only", "01")
    assert r.returncode == 0, r.stderr[-2000:]


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_says_how_to_continue(tmp_path):
    e = {**os.environ, "AVGAS_ROOT": ROOT}
    job = subprocess.Popen(
        [sys.executable, "-m", "avgas", "run", "params/quick.yaml", "-p", f"run_root={tmp_path}", "--only", "01"],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=e,
        start_new_session=True,
        # as a terminal's job: a suite started in the background (`make test &`) runs with SIGINT
        # ignored, which its children inherit, and then Ctrl-C could never reach the run
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 120
    executed = tmp_path / "quick" / "01_data.ipynb"  # papermill writes it when the kernel starts
    while time.time() < deadline and not executed.is_file():
        time.sleep(0.1)
    time.sleep(1)  # inside the notebook (early: on a busy machine 01 can finish within seconds)
    os.killpg(job.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground job, kernel included
    out, err = job.communicate(timeout=120)
    line = one_line_error(subprocess.CompletedProcess(job.args, job.returncode, out, err), 1)
    assert "interrupted" in line and "same command again" in line
    m = json.loads((tmp_path / "quick" / "run.json").read_text())
    assert m["notebooks"]["01_data"]["status"] == "interrupted"
    assert not [f for f in (tmp_path / "quick").rglob("*") if f.name.endswith(".tmp")]


# ---------------------------------------------------------------------- the CLI's table (issue 24)


def test_every_user_error_the_cli_names_exists():
    """cli.USER_ERRORS names the errors that become one line by module and class (looked up, not
    imported); a class moved or renamed would turn its one-line error into a traceback."""
    import importlib

    from avgas import cli

    for module, name in cli.USER_ERRORS:
        cls = getattr(importlib.import_module(module), name, None)
        assert isinstance(cls, type) and issubclass(cls, Exception), f"{module}.{name} (cli.USER_ERRORS) is gone"
    assert len(cli.user_error_types()) == len(cli.USER_ERRORS)


def test_the_cli_starts_without_torch():
    """`python -m avgas --help` and the light commands must not wait for torch (or pandas): heavy
    modules are imported by the handlers that need them."""
    code = "import sys, avgas.cli; sys.exit('torch' in sys.modules or 'pandas' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})
    assert r.returncode == 0, "importing avgas.cli loads torch or pandas: import heavy modules inside the handler"


def test_each_user_error_is_looked_up_where_its_class_is_defined():
    """cli finds user errors in sys.modules by module name: a class named by a module that only
    re-exports it is missed whenever a command did not import that module (world's DataError
    after it moved from avgas.data to avgas.layout showed a traceback)."""
    import importlib

    from avgas import cli

    for module, name in cli.USER_ERRORS:
        cls = getattr(importlib.import_module(module), name)
        assert cls.__module__ == module, f"{name} is defined in {cls.__module__}, cli looks in {module}"

"""The explorer as a web app: notebook 09 on a finished run, served by Voilà on localhost.

`python -m avgas explore runs/quick` writes the notebook with its parameters set to that run
(papermill's injected-parameters cell, nothing executed) into <run>/app/, then starts Voilà on it:
the code is hidden, the widgets are live, each page load gets its own kernel. On a cluster, run it
on the node and forward the port (`ssh -L 8866:localhost:8866 node`), then open the printed URL.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from avgas import custody, paths, runner
from avgas.runfolder import RunFolder

NOTEBOOK = "09_explorer.ipynb"
NEEDED = ("01_data", "02_pretrained", "03_separator")  # the explorer uses the data, the parts and a separator


class NotFinished(RuntimeError):
    """No finished run to explore; the message says which command makes one."""


def check_run(run_dir: str | Path) -> Path:
    run_dir = paths.resolve(run_dir)
    make = (
        "make one with: python -m avgas run params/quick.yaml (the quick tier, about 7 minutes on 2 cores; "
        "then python -m avgas explore runs/quick) or make book (the default tier)"
    )
    if not RunFolder(run_dir).params.is_file():
        raise NotFinished(f"{run_dir} is not a run folder (no params.yaml): {make}")
    done = runner.read_manifest(run_dir).get("notebooks", {})
    missing = [nb for nb in NEEDED if done.get(nb, {}).get("status") != "finished"]
    if missing:
        raise NotFinished(f"the run {run_dir} has not finished {', '.join(missing)}: {make}")
    return run_dir


def prepare(run_dir: str | Path) -> Path:
    """<run>/app/09_explorer.ipynb: notebook 09 with the run's params and live widgets."""
    with custody.hold(paths.resolve(run_dir), "python -m avgas explore", create=False):
        target = _prepare(check_run(run_dir))
        custody.record(target.parent.parent, target, "explore")
        return target


def _prepare(run_dir: Path) -> Path:

    import papermill as pm

    target = RunFolder(run_dir).app / NOTEBOOK
    target.parent.mkdir(exist_ok=True)
    tmp = target.with_name(f".tmp-{NOTEBOOK}")
    quiet = logging.getLogger("papermill")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # "unknown parameter: name" is intended: injected params override the file
    try:
        pm.execute_notebook(
            str(paths.project_root() / "notebooks" / NOTEBOOK),
            str(tmp),
            parameters={
                "params_file": str(RunFolder(run_dir).params),
                "name": run_dir.name,
                "run_root": str(run_dir.parent),  # the folder may have moved since it was made
                "live": True,
                "static_examples": False,
            },
            prepare_only=True,
            kernel_name="python3",
            progress_bar=False,
        )
    finally:
        quiet.setLevel(level)
    paths.guard(target)
    tmp.replace(target)
    return target


def command(notebook: Path, port: int, ip: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "voila",
        str(notebook),
        "--no-browser",
        f"--port={port}",
        f"--Voila.ip={ip}",
        "--show_tracebacks=True",
    ]


def serve(run_dir: str | Path, port: int = 8866, ip: str = "127.0.0.1") -> int:
    try:
        nb = prepare(run_dir)
    except NotFinished as e:
        print(f"avgas: {e}", file=sys.stderr)
        return 2
    print(f"explorer of {nb.parent.parent}: open http://{'localhost' if ip == '127.0.0.1' else ip}:{port}/", flush=True)
    print("(on a cluster node: ssh -L {0}:localhost:{0} <node>, then open that URL here; Ctrl-C stops)".format(port))
    try:
        return subprocess.call(command(nb, port, ip), cwd=nb.parent)
    except KeyboardInterrupt:
        return 0

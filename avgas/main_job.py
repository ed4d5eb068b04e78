"""The main job (`make book`): the three runs the book shows, two at a time, then the book.

The default run's notebook 08 shows the `g_blend_share: 0` ablation and its notebook 10 the
three-source sibling, so all three must exist. They share the instrument store (each part built
once), but the sibling's stand-ins, judges and separators are its own, and most steps of a run
are small convolutions that a second torch thread barely speeds up. So the job keeps both cores
busy with two lanes, each run with one torch thread:

    lane 1:  <name>                -> <name>-g_blend_share0   (the ablation takes f_V, f_A, the
                                                               judges and the separators from the store)
    lane 2:  <name>-sources3

Every run is an ordinary `python -m avgas run` (its own lock, its own log.txt; a finished
notebook is skipped, so a second job with nothing changed verifies and returns). Each line a run
prints reaches the terminal tagged with its run's name. When both lanes are done, the main run is
run once more: only its notebooks that read the siblings (08, 10) execute again.

    python -m avgas.main_job params/default.yaml     # what `make book` runs before the book
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml


def _name(params_file: Path) -> str:
    return str((yaml.safe_load(params_file.read_text()) or {}).get("name", "default"))


def lanes(params_file: Path) -> list[list[tuple[str, list[str]]]]:
    """The job's lanes: per lane, the (run name, command) pairs it runs one after another."""
    name = _name(params_file)
    run = [sys.executable, "-m", "avgas", "run", str(params_file), "-p", "threads=1"]
    return [
        [(name, run), (f"{name}-g_blend_share0", [*run, "--sweep", "g_blend_share=0"])],
        [(f"{name}-sources3", [*run, "--sweep", "sources=3"])],
    ]


def _pump(stream, tag: str, out, lock: threading.Lock) -> None:
    """Copy a run's output line by line, tagged. Papermill's cell bar ("Executing: ...", redrawn
    with carriage returns) is left out: two of them would interleave into noise, and the runner's
    own progress lines ("[avgas] [NN_notebook] step: n/N ...") say more."""
    for raw in iter(stream.readline, b""):
        text = raw.decode(errors="replace").rstrip("\n")
        text = text[text.rindex("[avgas]") :] if "[avgas]" in text else text.split("\r")[-1]
        if text.strip() and not text.startswith("Executing:"):
            with lock:
                print(f"[{tag}] {text}", file=out, flush=True)


def _lane(steps, codes: list, i: int, out, lock: threading.Lock) -> None:
    for tag, cmd in steps:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        _pump(proc.stdout, tag, out, lock)
        code = proc.wait()
        if code != 0:
            with lock:
                print(f"[{tag}] failed (exit code {code}); the rest of its lane is not run", file=out, flush=True)
            codes[i] = code
            return


def run(params_file: str | Path, out=None) -> int:
    """Run the lanes side by side, then the main run once more; the first failing exit code, or 0."""
    params_file, out = Path(params_file), out or sys.stderr
    todo = lanes(params_file)
    codes, lock = [0] * len(todo), threading.Lock()
    t0 = time.perf_counter()
    threads = [threading.Thread(target=_lane, args=(steps, codes, i, out, lock)) for i, steps in enumerate(todo)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    failed = next((c for c in codes if c), 0)
    if not failed:  # the main run's readers of its siblings (08, 10) see both siblings now
        main_tag, main_cmd = todo[0][0]
        _lane([(main_tag, main_cmd)], codes, 0, out, lock)
        failed = codes[0]
    minutes = (time.perf_counter() - t0) / 60
    print(f"[avgas] the three runs took {minutes:.1f} min of wall time ({len(todo)} side by side)", file=out)
    return failed


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m avgas.main_job PARAMS.yaml", file=sys.stderr)
        return 2
    if not Path(argv[0]).is_file():
        print(f"avgas: params file not found: {argv[0]}", file=sys.stderr)
        return 2
    return run(argv[0])


if __name__ == "__main__":
    sys.exit(main())

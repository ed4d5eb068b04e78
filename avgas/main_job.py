"""The main job (`make book`): the three runs the book shows, two at a time, then the book.

The default run's notebook 08 shows the `g_blend_share` ablation (G trained with the other
candidate share, params.design.ablation_blend_share) and its notebook 10 the
three-source sibling, so all three must exist. They share the instrument store (each part built
once), but the sibling's stand-ins, judges and separators are its own, and most steps of a run
are small convolutions that a second torch thread barely speeds up. So the job keeps both cores
busy with two lanes, each run with one torch thread:

    lane 1:  <name>                          -> <name>-g_blend_share0.5 (the rest: 03-10, f_V, f_A,
                                                the judges and the separators from the store)
    lane 2:  <name>-g_blend_share0.5 --until 02 (its own G)  -> <name>-sources3

The ablation's G (the one part of the ablation that is its own, and its largest) is trained in
lane 2 while lane 1 trains the default's, so lane 1 finds it done. A step of a run waits for
an earlier step of the same run in the other lane (a run folder has one writer at a time).
Lane 2 stops the ablation after 02 with --until, not --only: --only reruns a finished notebook,
and a second `make book` would then execute 01 and 02 again and rewrite what they wrote.
Parts both lanes need at once (the world, f_V, f_A) are built by one and waited for by the
other (avgas.instrument's build claims).

Every run is an ordinary `python -m avgas run` (its own lock, its own log.txt; a finished
notebook is skipped, so a second job with nothing changed verifies and returns). Each line a run
prints reaches the terminal tagged with its run's name. When both lanes are done, the main run is
run once more: only its notebooks that read the siblings (08, 10) execute again.

    python -m avgas.main_job params/default.yaml         # what `make book` runs before the book
    python -m avgas.main_job --runs params/default.yaml  # the three run folders (for the stage table)
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from avgas import params as params_mod
from avgas.params import design


def lanes(params_file: Path) -> list[list[tuple[str, list[str]]]]:
    """The job's lanes: per lane, the (run name, command) pairs it runs one after another."""
    p = params_mod.load(params_file)
    share = design.ablation_blend_share(p.g_blend_share)
    name, ablation_name = p.name, p.name + design.ablation_suffix(p.g_blend_share)
    run = [sys.executable, "-m", "avgas", "run", str(params_file), "-p", "threads=1"]
    ablation = [*run, "--sweep", f"g_blend_share={share:g}"]
    return [
        [(name, run), (ablation_name, ablation)],
        [
            (ablation_name, [*ablation, "--until", "02"]),
            (f"{name}-sources3", [*run, "--sweep", "sources=3"]),
        ],
    ]


def run_folders(params_file: Path) -> list[Path]:
    """The folders of the job's runs (the stage table reads them), siblings first."""
    root = Path(params_mod.load(params_file).run_root)
    names = dict.fromkeys(tag for lane in lanes(params_file) for tag, _ in lane)
    return [root / n for n in sorted(names, key=lambda n: (n == next(iter(names)), n))]


def _before(todo, i: int, j: int) -> list[tuple[int, int]]:
    """The steps of other lanes that run the same run as step j of lane i and come before it (a
    smaller place in their lane, or the same place in an earlier lane): it waits for them."""
    tag = todo[i][j][0]
    return [
        (k, m)
        for k, steps in enumerate(todo)
        if k != i
        for m, (t, _) in enumerate(steps)
        if t == tag and (m < j or (m == j and k < i))
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


def _lane(todo, i: int, codes: list, done: dict, out, lock: threading.Lock) -> None:
    for j, (tag, cmd) in enumerate(todo[i]):
        for k in _before(todo, i, j):
            done[k].wait()
        code = _step(tag, cmd, out, lock)
        done[(i, j)].set()
        if code != 0:
            codes[i] = code
            for m in range(j + 1, len(todo[i])):  # the rest of the lane is not run: nothing waits for it
                done[(i, m)].set()
            return


def _step(tag: str, cmd: list[str], out, lock: threading.Lock) -> int:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    _pump(proc.stdout, tag, out, lock)
    code = proc.wait()
    if code != 0:
        with lock:
            print(f"[{tag}] failed (exit code {code}); the rest of its lane is not run", file=out, flush=True)
    return code


def run(params_file: str | Path, out=None) -> int:
    """Run the lanes side by side, then the main run once more; the first failing exit code, or 0."""
    params_file, out = Path(params_file), out or sys.stderr
    todo = lanes(params_file)
    codes, lock = [0] * len(todo), threading.Lock()
    done = {(i, j): threading.Event() for i, steps in enumerate(todo) for j in range(len(steps))}
    t0 = time.perf_counter()
    ends = [0.0] * len(todo)

    def lane(i: int) -> None:
        try:
            _lane(todo, i, codes, done, out, lock)
        finally:
            ends[i] = (time.perf_counter() - t0) / 60

    threads = [threading.Thread(target=lane, args=(i,)) for i in range(len(todo))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    failed = next((c for c in codes if c), 0)
    if not failed:  # the main run's readers of its siblings (08, 10) see both siblings now
        failed = _step(*todo[0][0], out, lock)
    minutes = (time.perf_counter() - t0) / 60
    print(f"[avgas] the three runs took {minutes:.1f} min of wall time ({len(todo)} side by side)", file=out)
    # a lane that ends early leaves its core idle until the other ends: the job's packing, in numbers
    lanes_done = ", ".join(f"lane {i + 1} {m:.1f}" for i, m in enumerate(ends))
    again = "" if any(codes) else "; then the main run again"
    print(f"[avgas] the lanes ended after (min): {lanes_done}{again}", file=out)
    return failed


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    folders = argv[:1] == ["--runs"]
    argv = argv[1:] if folders else argv
    if len(argv) != 1:
        print("usage: python -m avgas.main_job [--runs] PARAMS.yaml", file=sys.stderr)
        return 2
    if not Path(argv[0]).is_file():
        print(f"avgas: params file not found: {argv[0]}", file=sys.stderr)
        return 2
    try:
        if folders:
            print(" ".join(str(f) for f in run_folders(Path(argv[0]))))
            return 0
        return run(argv[0])
    except params_mod.ParamsError as e:
        print(f"avgas: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

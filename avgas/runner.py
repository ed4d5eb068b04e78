"""Run the numbered notebooks as one parameterised job (papermill), into runs/<name>/.

A run folder keeps the resolved params it ran with (`params.yaml`) and a manifest (`run.json`):
for each notebook, the hash of its source, of the avgas code it imports (avgas.codestamp) and whether
it finished. Rerunning the same params skips finished notebooks whose source and code did not
change (an interrupted run continues where it stopped; a notebook after a rerun one reruns too, as
its inputs may have changed). A run folder made with other
params is not touched unless `overwrite` is given; then the old executed notebooks, params and
manifest are kept under `previous/<time>/` first.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

from avgas import codestamp, custody, paths
from avgas import params as params_mod
from avgas import progress as progress_mod
from avgas.params import Params
from avgas.runfolder import RunFolder

log = logging.getLogger("avgas")

HOW_TO_RUN = custody.HOW_TO_RUN  # keys that change how a run proceeds, not what it computes
_differences = custody.differences


class RunError(RuntimeError):
    """A notebook failed, or the run folder holds another run; the message says what to do."""


def notebooks(only: list[str] | None = None) -> list[Path]:
    """The numbered notebooks, in order; `only` picks some by number ('01', '3') or name."""
    found = sorted((paths.project_root() / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if not only:
        return found
    picked = []
    for want in only:
        match = [nb for nb in found if nb.name[:2] == want.zfill(2) or nb.stem == want]
        if not match:
            raise RunError(f"no notebook {want!r}; there are: " + ", ".join(nb.stem for nb in found))
        picked += match
    return sorted(set(picked))


def source_hash(nb: Path) -> str:
    """The hash of a notebook's cells (sources only: outputs and metadata do not count)."""
    cells = json.loads(nb.read_text())["cells"]
    return hashlib.sha1(json.dumps([(c["cell_type"], "".join(c["source"])) for c in cells]).encode()).hexdigest()[:16]


def _manifest_path(run_dir: Path) -> Path:
    return RunFolder(run_dir).manifest


def read_manifest(run_dir: Path) -> dict:
    f = _manifest_path(run_dir)
    return json.loads(f.read_text()) if f.is_file() else {}


def _write_manifest(run_dir: Path, m: dict) -> None:
    paths.atomic_write_bytes(_manifest_path(run_dir), json.dumps(m, indent=1).encode())


def _claim(p: Params, overwrite: bool) -> dict:
    """The run folder's manifest if the folder's params.yaml matches these params; else refuse,
    or archive the old run with `overwrite`."""
    run_dir = p.run_dir
    m = read_manifest(run_dir)
    executed = sorted(run_dir.glob("[0-9][0-9]_*.ipynb"))
    if not m and not executed:
        return {}
    diff = _differences(p.folder.params, p) if p.folder.params.is_file() else ["unknown params"]
    if not diff:
        return m
    if not overwrite:
        raise RunError(
            f"{run_dir} holds a run made with other params ({'; '.join(diff[:6]) or 'unknown params'}"
            f"{' ...' if len(diff) > 6 else ''}). Nothing was changed. Give the new run its own folder "
            f"(-p name=...) or pass --overwrite (the old notebooks and params are kept under previous/)."
        )
    keep = p.folder.previous / time.strftime("%Y%m%d-%H%M%S")
    keep.mkdir(parents=True, exist_ok=True)
    for f in [*executed, p.folder.params, p.folder.manifest, p.folder.results]:
        if f.is_file():
            shutil.move(str(f), keep / f.name)
    log.info("overwrite: previous run moved to %s", keep)
    print(f"[avgas] previous run kept in {keep}", file=sys.stderr, flush=True)
    return {}


def _failed_cell(executed: Path, exec_count) -> str:
    """'cell 3 (`first line ...`)': the failing cell's place in the committed notebook (the cell
    papermill injects is not counted) and its first line, so it can be found without Jupyter."""
    try:
        cells = [
            c
            for c in json.loads(executed.read_text())["cells"]
            if not {"injected-parameters", "papermill-error-cell-tag"} & set(c.get("metadata", {}).get("tags", []))
        ]
        for i, c in enumerate(cells, 1):
            if any(o.get("output_type") == "error" for o in c.get("outputs", [])):
                first = next((ln for ln in "".join(c["source"]).splitlines() if ln.strip()), "")
                return f"cell {i} (`{first[:60]}`)"
    except (OSError, ValueError, KeyError):
        pass
    return f"the cell executed as [{exec_count}]"


def _log_to(run_dir: Path) -> logging.Handler:
    handler = logging.FileHandler(RunFolder(run_dir).log)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler


def plan(p: Params, only: list[str] | None = None, manifest: dict | None = None) -> list[tuple[Path, bool]]:
    """(notebook, needs running) for each notebook picked, given the folder's manifest (one made
    with these params)."""
    done = (manifest or {}).get("notebooks", {})
    out, stale = [], False
    for nb in notebooks(None):
        entry = done.get(nb.stem, {})
        fresh = (
            entry.get("status") == "finished"
            and entry.get("source") == source_hash(nb)
            and entry.get("code") == codestamp.notebook_stamp(nb)  # the avgas code it runs (a git pull)
            and p.folder.notebook(nb.name).is_file()
        )
        # a notebook that recorded what it read reruns only when that changed (inputs_changed, in
        # the run loop); one from before that record reruns after any notebook that reran
        stale = (stale and "inputs" not in entry) or not fresh
        out.append((nb, stale))
    picked = set(notebooks(only))
    # a notebook picked with --only always runs; unpicked ones are left alone
    return [(nb, True if only else need) for nb, need in out if nb in picked]


def run(
    p: Params,
    only: list[str] | None = None,
    progress: bool = True,
    overwrite: bool = False,
    force: bool = False,
    until: str | None = None,
) -> dict[str, float | str]:
    """Execute the notebooks on `p`; returns wall seconds per notebook run ('skipped' if reused).
    `until` ('02'): stop after that notebook; unlike `only`, a finished one is still skipped.
    One process at a time per run folder: a second one is refused (paths.BusyError)."""
    notebooks(only)  # fail on a wrong --only before any work
    last = last_of(until)
    p.run_dir.mkdir(parents=True, exist_ok=True)
    with custody.hold(p.run_dir, f"python -m avgas run, run '{p.name}'"):
        return _run(p, only, progress, overwrite, force, last)


def last_of(until: str | None) -> str | None:
    """The stem of the notebook `until` names ('2', '02' or '02_pretrained'), or None."""
    if until is None:
        return None
    found = notebooks([until])  # a wrong one is a RunError naming the notebooks there are
    if not found:
        raise RunError(f"no notebook {until!r}")
    return found[0].stem


def _run(p: Params, only, progress: bool, overwrite: bool, force: bool, last=None) -> dict[str, float | str]:
    run_dir = p.run_dir
    m = _claim(p, overwrite)
    _needs_before(p, only, m)
    _adopt(run_dir, m)
    steps = [(nb, need or force) for nb, need in plan(p, only, m) if last is None or nb.stem <= last]
    resolved = p.folder.params
    with custody.watch(run_dir, "run"):
        params_mod.save(p, resolved)
    m = {"notebooks": m.get("notebooks", {})}
    _write_manifest(run_dir, m)
    # the kernels know they run as a batch job: live widgets are not made there, as nbclient can
    # block forever on a cell that opens them (jupyter/nbclient#312); their progress bars also
    # report to log.txt and the job's stderr (avgas.progress)
    os.environ["AVGAS_BATCH"] = "1"
    os.environ[progress_mod.ENV_LOG] = str(p.folder.log)
    os.environ[progress_mod.ENV_SECONDS] = str(p.progress_seconds)
    os.environ["AVGAS_RUN_NAME"] = p.name  # who holds a build claim in the instrument store
    handler = _log_to(run_dir)
    times: dict[str, float | str] = {}
    try:
        steps = _verified(run_dir, steps, m)
        for nb, need in steps:
            out = p.folder.notebook(nb.name)
            inputs = inputs_digest(m, nb, _siblings(p) if nb.stem in SIBLING_READERS else "")
            if not need and not only and m["notebooks"].get(nb.stem, {}).get("inputs", inputs) != inputs:
                need = True
                log.info("%s runs again: what the notebooks before it wrote has changed", nb.name)
            if not need:
                log.info("skipping %s: finished with these params and this notebook", nb.name)
                print(f"[avgas] {nb.name}: finished before with these params, skipped", file=sys.stderr, flush=True)
                times[nb.stem] = "skipped"
                continue
            log.info("running %s -> %s", nb.name, out)
            print(f"[avgas] {nb.name} -> {out}", file=sys.stderr, flush=True)
            os.environ[progress_mod.ENV_NOTEBOOK] = nb.stem
            # the manifest records outcomes only: a killed job never leaves a notebook "running"
            entry = {
                "source": source_hash(nb),
                "code": codestamp.notebook_stamp(nb),
                "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "inputs": inputs,
            }
            t0 = time.perf_counter()
            _execute(p, m, nb, entry, progress)
            times[nb.stem] = time.perf_counter() - t0
            outputs = _outputs(run_dir, nb, m["notebooks"].get(nb.stem, {}))
            _record(run_dir, m, nb, {**entry, "seconds": round(times[nb.stem], 1), "outputs": outputs}, "finished")
            log.info("finished %s in %.1f s", nb.name, times[nb.stem])
    finally:
        os.environ.pop(progress_mod.ENV_NOTEBOOK, None)
        log.removeHandler(handler)
        handler.close()
    return times


def _execute(p: Params, m: dict, nb: Path, entry: dict, progress: bool) -> None:
    """Execute one notebook into the run folder; a failure or an interruption is recorded in the
    manifest (`entry`: what is known of this execution) and raised as one the CLI can say in a line."""
    import papermill as pm

    run_dir, out = p.run_dir, p.folder.notebook(nb.name)
    try:
        with progress_mod.Echo(p.folder.log), custody.watch(run_dir, nb.stem):
            pm.execute_notebook(
                str(nb),
                str(out),
                parameters={"params_file": str(p.folder.params)},
                cwd=str(nb.parent),
                kernel_name="python3",
                progress_bar=progress,
                log_output=False,
                kernel_manager_class=_kernel_manager(p.folder.kernel_log),
            )
    except pm.PapermillExecutionError as e:
        if e.ename == "KeyboardInterrupt":
            raise KeyboardInterrupt from None
        msg = (
            f"{nb.name} failed in {_failed_cell(out, e.exec_count)} ({e.ename}: {e.evalue}); "
            f"the executed notebook is kept at {out}"
        )
        _record(run_dir, m, nb, entry, "failed", f"{e.ename}: {e.evalue}"[:500])
        log.error(msg)
        raise RunError(msg) from None
    except KeyboardInterrupt as e:
        how = "SIGTERM" if isinstance(e, custody.Terminated) else "Ctrl-C"
        _record(run_dir, m, nb, entry, "interrupted", how)
        log.error(
            "%s interrupted (%s); not finished. To continue, run the same command again: finished "
            "notebooks are skipped (-p resume=true continues a separator's training).",
            nb.name,
            how,
        )
        raise
    except OSError as e:  # the job itself could not write (a full disk, a read-only folder)
        msg = f"{nb.name} stopped: {paths.os_error_message(e)}" + (
            " Then run the same command again: finished notebooks are skipped." if paths.disk_full(e) else ""
        )
        _record(run_dir, m, nb, entry, "failed", msg[:500])
        log.error(msg)
        raise RunError(msg) from None
    except BaseException as e:
        if custody.STOPPING:  # the kernel died of the same signal that stops the runner
            _record(run_dir, m, nb, entry, "interrupted", "SIGTERM")
            log.error("%s interrupted (SIGTERM); run the same command again to continue", nb.name)
            raise custody.Terminated() from None
        _record(run_dir, m, nb, entry, "failed", f"{type(e).__name__}: {e}"[:500])
        log.error("%s failed: %s: %s", nb.name, type(e).__name__, e)
        raise


def _needs_before(p: Params, only, m: dict) -> None:
    """--only on a run whose earlier notebooks have not finished: say which, and the command that
    runs them (a notebook reads what every earlier one wrote; nothing reads the explorer, 09)."""
    if not only:
        return
    done = {k for k, e in m.get("notebooks", {}).items() if e.get("status") == "finished"}
    picked = {nb.stem for nb in notebooks(only)}
    for nb in notebooks(only):
        missing = [
            e.stem for e in notebooks(None) if e.name < nb.name and e.stem not in done | picked and e.name[:2] != "09"
        ]
        if missing:
            first = ",".join(sorted({x[:2] for x in [*missing, *picked]}))
            raise RunError(
                f"{nb.stem} reads what {', '.join(missing)} write{'s' if len(missing) == 1 else ''}, and this run "
                f"({p.run_dir}) has not finished {'it' if len(missing) == 1 else 'them'}; run "
                f"`python -m avgas run <params> --only {first}`, or the whole run without --only"
            )


def _adopt(run_dir: Path, m: dict) -> None:
    """A run made before avgas kept a record of its files: record them now, each attributed to the
    notebook that ran when it was written (run.json's times)."""
    done = m.get("notebooks", {})
    if custody.has_record(run_dir) or not done:
        return
    windows = []
    for stem, e in done.items():
        try:
            t0 = time.mktime(time.strptime(e["started"], "%Y-%m-%dT%H:%M:%S"))
        except (KeyError, ValueError):
            continue
        windows.append((stem, t0, t0 + float(e.get("seconds") or 0)))
    custody.adopt(run_dir, windows)
    print(f"[avgas] recorded the files of {run_dir} (a run from before avgas kept a record)", file=sys.stderr)


def _outputs(run_dir: Path, nb: Path, before: dict) -> dict:
    """What a notebook wrote, by content: the files custody's record holds as written by it (the
    ones its run changed, and those it wrote before that no later notebook rewrote since), over
    what it had written before. Its executed copy is left out (it holds run times; only the book
    reads it)."""
    now = {
        path: e.get("sha256", "")
        for path, e in custody.read_record(run_dir).items()
        if e.get("writer") == nb.stem and path != nb.name
    }
    return {**before.get("outputs", {}), **now}


# Notebooks that read sibling runs beside the run (runs/<name>-<key><value>/): 08 shows the
# g_blend_share ablation's Table 1 and the instrument draws' verdicts, 10 the three-source run.
SIBLING_READERS = ("08_results", "10_beyond")


def _siblings(p: Params) -> str:
    """The sibling runs' results, by content: a sibling that changed reruns its readers."""
    siblings = sorted(RunFolder(d).results for d in p.run_dir.parent.glob(f"{p.name}-*"))
    found = [f for f in siblings if f.is_file()]
    return json.dumps([(f.parent.name, paths.file_hash(f)) for f in found])


def _derived(path: str) -> bool:
    """A file of the run's cache folder (path relative to the run folder)."""
    return Path(path).parts[:1] == (RunFolder(Path()).cache.name,)


def inputs_digest(m: dict, nb: Path, outside: str = "") -> str:
    """What a notebook can read of its run: the bytes that the notebooks before it wrote, as each
    of them recorded in the manifest when it ran (so a later notebook rewriting a shared file does
    not count). Kept with the notebook when it runs; a rerun skips it while this is unchanged, so a
    prose edit of one notebook re-executes that notebook and only those downstream whose inputs
    its new run changed.

    Files under cache/ are left out: each holds the key it was made for and is remade when a
    reader asks for another (spectrogram.cached), so its bytes say which reader ran last, not
    what the run holds; what it is made from (clips, tuples, parts) is counted where it is written."""
    done = m.get("notebooks", {})
    files = sorted(
        (stem, path, sha)
        for stem, e in done.items()
        if stem < nb.stem
        for path, sha in e.get("outputs", {}).items()
        if not _derived(path)
    )
    return hashlib.sha1(json.dumps([files, outside]).encode()).hexdigest()[:16]


def _verified(run_dir: Path, steps: list, m: dict) -> list:
    """Before a finished notebook is skipped, the files it wrote are checked against the run's
    record (custody). A damaged or missing one is named, set aside, and its notebook (and every
    later one) runs again."""
    damaged = custody.verify(run_dir)
    if not damaged:
        return steps
    keep = custody.set_aside(run_dir, damaged)
    stems = {nb.stem for nb, _ in steps}
    again = set()
    for d in damaged:
        redo = d.writer if d.writer in stems else None
        again |= {redo} if redo else set()
        msg = f"{d.path} is damaged ({d.why}); set aside in {keep}; " + (
            f"{redo} runs again to write it"
            if redo
            else f"written by {d.writer}: run it again to write it"
            if d.writer[:2].isdigit()
            else f"written by `python -m avgas {d.writer}`, which writes it again when asked"
        )
        log.warning(msg)
        print(f"[avgas] {msg}", file=sys.stderr, flush=True)
    out, stale = [], False
    for nb, need in steps:
        stale = stale or nb.stem in again
        out.append((nb, need or stale))
    return out


def _kernel_manager(stderr_file: Path):
    """A Jupyter kernel manager whose kernel writes its own stdout/stderr (start-up warnings such
    as "running over TCP without encryption", shutdown noise after Ctrl-C) to the run's
    kernel.log instead of the user's terminal; cell outputs still go to the notebook."""
    from jupyter_client.manager import AsyncKernelManager

    class LoggedKernelManager(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd, **kw):
            f = open(stderr_file, "ab")  # the kernel process keeps its own copy of the descriptor
            try:
                return await super()._async_launch_kernel(kernel_cmd, **{**kw, "stdout": f, "stderr": f})
            finally:
                f.close()

    return LoggedKernelManager


def _record(run_dir: Path, m: dict, nb: Path, entry: dict, status: str, error: str | None = None) -> None:
    """Write a notebook's outcome to the manifest. When even that cannot be written (a full
    disk), the manifest on disk still does not call the notebook finished, so a rerun redoes it."""
    m["notebooks"][nb.stem] = {**entry, "status": status, **({"error": error} if error else {})}
    try:
        _write_manifest(run_dir, m)
    except OSError as e:
        log.error("cannot write the manifest %s: %s", _manifest_path(run_dir), e)

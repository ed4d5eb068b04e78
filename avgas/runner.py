"""Run the numbered notebooks as one parameterised job (papermill), into runs/<name>/.

A run folder keeps the resolved params it ran with (`params.yaml`) and a manifest (`run.json`):
for each notebook, the hash of its source and whether it finished. Rerunning the same params skips finished
notebooks whose source did not change (an interrupted run continues where it stopped; a notebook
after a rerun one reruns too, as its inputs may have changed). A run folder made with other
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

from avgas import params as params_mod
from avgas import paths
from avgas import progress as progress_mod
from avgas.params import Params

log = logging.getLogger("avgas")

# Keys that change how a run proceeds, not what it computes: they do not make a run different
# (the README's recipe for a killed run, `-p resume=true`, must continue it, not be refused).
HOW_TO_RUN = ("threads", "resume", "retrain_stand_ins", "ingest_workers", "progress_seconds", "train_processes")


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
    return run_dir / "run.json"


def read_manifest(run_dir: Path) -> dict:
    f = _manifest_path(run_dir)
    return json.loads(f.read_text()) if f.is_file() else {}


def _write_manifest(run_dir: Path, m: dict) -> None:
    paths.atomic_write_bytes(_manifest_path(run_dir), json.dumps(m, indent=1).encode())


def _differences(old_file: Path, p: Params) -> list[str]:
    """What differs between a run folder's params.yaml and `p`. A key the old file lacks counts
    only if `p` sets it to something other than its default (a newer avgas adding a key does not
    make an old run a different one)."""
    import yaml

    try:
        old = yaml.safe_load(old_file.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return ["(the folder's params.yaml cannot be read)"]
    defaults = params_mod.load(None).to_dict()
    out = []
    for k, v in p.to_dict().items():
        if k in HOW_TO_RUN or k in ("name", "run_root"):  # where a run lies is its folder, not a param of it
            continue
        before = old.get(k, defaults[k])
        if before != v:
            out.append(f"{k}: {before!r} -> {v!r}")
    return out


def _claim(p: Params, overwrite: bool) -> dict:
    """The run folder's manifest if the folder's params.yaml matches these params; else refuse,
    or archive the old run with `overwrite`."""
    run_dir = p.run_dir
    m = read_manifest(run_dir)
    executed = sorted(run_dir.glob("[0-9][0-9]_*.ipynb"))
    if not m and not executed:
        return {}
    diff = _differences(run_dir / "params.yaml", p) if (run_dir / "params.yaml").is_file() else ["unknown params"]
    if not diff:
        return m
    if not overwrite:
        raise RunError(
            f"{run_dir} holds a run made with other params ({'; '.join(diff[:6]) or 'unknown params'}"
            f"{' ...' if len(diff) > 6 else ''}). Nothing was changed. Give the new run its own folder "
            f"(-p name=...) or pass --overwrite (the old notebooks and params are kept under previous/)."
        )
    keep = run_dir / "previous" / time.strftime("%Y%m%d-%H%M%S")
    keep.mkdir(parents=True, exist_ok=True)
    for f in [*executed, run_dir / "params.yaml", _manifest_path(run_dir), run_dir / "results.json"]:
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
    handler = logging.FileHandler(run_dir / "log.txt")
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
            and (p.run_dir / nb.name).is_file()
        )
        stale = stale or not fresh
        out.append((nb, stale))
    picked = set(notebooks(only))
    # a notebook picked with --only always runs; unpicked ones are left alone
    return [(nb, True if only else need) for nb, need in out if nb in picked]


def run(
    p: Params, only: list[str] | None = None, progress: bool = True, overwrite: bool = False, force: bool = False
) -> dict[str, float | str]:
    """Execute the notebooks on `p`; returns wall seconds per notebook run ('skipped' if reused).
    One process at a time per run folder: a second one is refused (paths.BusyError)."""
    notebooks(only)  # fail on a wrong --only before any work
    p.run_dir.mkdir(parents=True, exist_ok=True)
    with paths.exclusive(p.run_dir, f"python -m avgas run, run '{p.name}'"):
        return _run(p, only, progress, overwrite, force)


def _run(p: Params, only, progress: bool, overwrite: bool, force: bool) -> dict[str, float | str]:
    import papermill as pm

    run_dir = p.run_dir
    m = _claim(p, overwrite)
    steps = [(nb, need or force) for nb, need in plan(p, only, m)]
    resolved = run_dir / "params.yaml"
    params_mod.save(p, resolved)
    m = {"notebooks": m.get("notebooks", {})}
    _write_manifest(run_dir, m)
    # the kernels know they run as a batch job: live widgets are not made there, as nbclient can
    # block forever on a cell that opens them (jupyter/nbclient#312); their progress bars also
    # report to log.txt and the job's stderr (avgas.progress)
    os.environ["AVGAS_BATCH"] = "1"
    os.environ[progress_mod.ENV_LOG] = str(run_dir / "log.txt")
    os.environ[progress_mod.ENV_SECONDS] = str(p.progress_seconds)
    handler = _log_to(run_dir)
    times: dict[str, float | str] = {}
    try:
        for nb, need in steps:
            out = run_dir / nb.name
            if not need:
                log.info("skipping %s: finished with these params and this notebook", nb.name)
                print(f"[avgas] {nb.name}: finished before with these params, skipped", file=sys.stderr, flush=True)
                times[nb.stem] = "skipped"
                continue
            log.info("running %s -> %s", nb.name, out)
            print(f"[avgas] {nb.name} -> {out}", file=sys.stderr, flush=True)
            os.environ[progress_mod.ENV_NOTEBOOK] = nb.stem
            # the manifest records outcomes only: a killed job never leaves a notebook "running"
            entry = {"source": source_hash(nb), "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
            t0 = time.perf_counter()
            try:
                with progress_mod.Echo(run_dir / "log.txt"):
                    pm.execute_notebook(
                        str(nb),
                        str(out),
                        parameters={"params_file": str(resolved)},
                        cwd=str(nb.parent),
                        kernel_name="python3",
                        progress_bar=progress,
                        log_output=False,
                        kernel_manager_class=_kernel_manager(run_dir / "kernel.log"),
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
            except KeyboardInterrupt:
                _record(run_dir, m, nb, entry, "interrupted", "Ctrl-C")
                log.error("%s interrupted (Ctrl-C)", nb.name)
                raise
            except OSError as e:  # the job itself could not write (a full disk, a read-only folder)
                msg = f"{nb.name} stopped: {paths.os_error_message(e)}" + (
                    " Then run the same command again: finished notebooks are skipped." if paths.disk_full(e) else ""
                )
                _record(run_dir, m, nb, entry, "failed", msg[:500])
                log.error(msg)
                raise RunError(msg) from None
            except BaseException as e:
                _record(run_dir, m, nb, entry, "failed", f"{type(e).__name__}: {e}"[:500])
                log.error("%s failed: %s: %s", nb.name, type(e).__name__, e)
                raise
            times[nb.stem] = time.perf_counter() - t0
            _record(run_dir, m, nb, {**entry, "seconds": round(times[nb.stem], 1)}, "finished")
            log.info("finished %s in %.1f s", nb.name, times[nb.stem])
    finally:
        os.environ.pop(progress_mod.ENV_NOTEBOOK, None)
        log.removeHandler(handler)
        handler.close()
    return times


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

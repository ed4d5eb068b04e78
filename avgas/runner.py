"""Run the numbered notebooks as one parameterised job (papermill), into runs/<name>/."""
from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

from avgas import params as params_mod
from avgas import paths
from avgas.params import Params

log = logging.getLogger("avgas")


class RunError(RuntimeError):
    """A notebook failed; the message names the notebook, the cell and the kept output."""


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


def _log_to(run_dir: Path) -> logging.Handler:
    handler = logging.FileHandler(run_dir / "log.txt")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler


def run(p: Params, only: list[str] | None = None, progress: bool = True) -> dict[str, float]:
    """Execute the notebooks on `p`; returns wall seconds per notebook."""
    import papermill as pm

    todo = notebooks(only)  # fail on a wrong --only before any work
    run_dir = p.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    resolved = run_dir / "params.yaml"
    params_mod.save(p, resolved)
    handler = _log_to(run_dir)
    times = {}
    try:
        for nb in todo:
            out = run_dir / nb.name
            log.info("running %s -> %s", nb.name, out)
            print(f"[avgas] {nb.name} -> {out}", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            try:
                pm.execute_notebook(str(nb), str(out), parameters={"params_file": str(resolved)},
                                    cwd=str(nb.parent), kernel_name="python3",
                                    progress_bar=progress, log_output=False)
            except pm.PapermillExecutionError as e:
                msg = (f"{nb.name} failed in cell {e.exec_count} ({e.ename}: {e.evalue}); "
                       f"the executed notebook is kept at {out}")
                log.error(msg)
                raise RunError(msg) from None
            times[nb.stem] = time.perf_counter() - t0
            log.info("finished %s in %.1f s", nb.name, times[nb.stem])
    finally:
        log.removeHandler(handler)
        handler.close()
    return times

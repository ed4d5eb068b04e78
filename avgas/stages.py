"""Where a run's time goes: the stage table `make book` prints at its end.

Two records of a batch run give it: run.json holds each notebook's wall time (avgas.runner), and
stages.jsonl one line per long step that finished (every progress bar of avgas: each stand-in,
judge, separator training, the spectrograms, ...; avgas.progress). A notebook's row is split into
its steps of its latest execution, and what is left of its wall time (loading, generation,
metrics, plots) is its "rest". A part taken from the instrument store has no step: it took no
training time in this run. Steps run side by side (separator trainings with `train_jobs` > 1) are
one step of their wall time; each worker's own steps are listed under it, indented, and not counted
again in the totals. A wait for a part that another run was building (avgas.instrument's build
claims) is a step of its own, and the table closes with their sum: time in which that run did no
work (a side-by-side worker's wait is inside its step's wall time, and not in that sum).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from avgas import instrument
from avgas.runfolder import RunFolder


def _steps(run_dir: Path) -> list[dict]:
    f = RunFolder(run_dir).stages
    if not f.is_file():
        return []
    rows = []
    for line in f.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue  # a line cut by a kill: the step did not finish
    return rows


def rows(run_dir: Path) -> list[dict]:
    """(run, notebook, stage, seconds) of one run: its notebooks' latest executions and their steps."""
    run_dir = Path(run_dir)
    try:
        notebooks = json.loads(RunFolder(run_dir).manifest.read_text()).get("notebooks", {})
    except (OSError, ValueError):
        return []
    steps = _steps(run_dir)
    out = []
    for nb, rec in notebooks.items():
        wall = rec.get("seconds")
        if wall is None:
            continue
        started = rec.get("started", "")
        mine = [s for s in steps if s.get("notebook") == nb and s.get("ended", "") >= started]
        for s in mine:
            row = {"run": run_dir.name, "notebook": nb, "stage": s["step"], "seconds": s["seconds"]}
            out.append({**row, "within": s["within"]} if s.get("within") else row)
        rest = wall - sum(s["seconds"] for s in mine if not s.get("within"))
        out.append({"run": run_dir.name, "notebook": nb, "stage": "rest of the notebook", "seconds": max(0.0, rest)})
    return out


def table(run_dirs: list[Path], min_share: float = 0.005) -> str:
    """A text table over several runs: every stage with its seconds and share of the total,
    biggest first; stages under `min_share` are folded into one line."""
    every = [r for d in run_dirs for r in rows(d)]
    all_rows = [r for r in every if not r.get("within")]
    total = sum(r["seconds"] for r in all_rows)
    if not total:
        return "no finished notebook to time"
    big = sorted((r for r in all_rows if r["seconds"] >= min_share * total), key=lambda r: -r["seconds"])
    small = [r for r in all_rows if r["seconds"] < min_share * total]
    inner = [r for r in every if r.get("within")]
    width = max([len(f"{r['run']} {r['notebook']} {r['stage']}") for r in big + inner] + [30])
    lines = [f"{'stage':{width}s} {'seconds':>9s} {'share':>6s}"]
    for r in big:
        name = f"{r['run']} {r['notebook']} {r['stage']}"
        lines.append(f"{name:{width}s} {r['seconds']:9.1f} {100 * r['seconds'] / total:5.1f}%")
        if "side by side" in r["stage"]:  # its workers' own steps, inside its wall time
            mine = [i for i in inner if (i["run"], i["notebook"]) == (r["run"], r["notebook"])]
            for i in sorted(mine, key=lambda i: -i["seconds"]):
                lines.append(f"{'  ' + i['stage']:{width}s} {i['seconds']:9.1f} {'(in)':>6s}")
    if small:
        s = sum(r["seconds"] for r in small)
        name = f"{len(small)} smaller stages"
        lines.append(f"{name:{width}s} {s:9.1f} {100 * s / total:5.1f}%")
    per_run = {}
    for r in all_rows:
        per_run[r["run"]] = per_run.get(r["run"], 0.0) + r["seconds"]
    lines.append("")
    lines += [f"{'total ' + run:{width}s} {s:9.1f} {100 * s / total:5.1f}%" for run, s in per_run.items()]
    lines.append(f"{'total':{width}s} {total:9.1f} 100.0%  ({total / 60:.1f} min)")
    idle = sum(r["seconds"] for r in all_rows if r["stage"].startswith(instrument.WAITING))
    if idle:  # time a run sat waiting for a part that a run beside it was building: no work done
        name = "of which waiting for another run's build"
        lines.append(f"{name:{width}s} {idle:9.1f} {100 * idle / total:5.1f}%  (work: {(total - idle) / 60:.1f} min)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """python -m avgas.stages RUN [RUN ...]: the stage table of finished runs (reads only)."""
    run_dirs = [Path(a) for a in (sys.argv[1:] if argv is None else argv)]
    missing = [d for d in run_dirs if not RunFolder(d).manifest.is_file()]
    for d in missing:
        print(f"{d}: no run.json (not a run folder, or no notebook has run yet); left out", file=sys.stderr)
    print(table([d for d in run_dirs if d not in missing]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

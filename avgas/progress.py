"""Progress a batch run's user can see: the terminal, log.txt, a SLURM log.

In a notebook, a progress bar is a widget that the executed notebook shows only when its cell
ends. So in a batch run (`python -m avgas run`, which sets AVGAS_PROGRESS_LOG), every bar of avgas
also writes a line, two seconds in, every `progress_seconds` (params) and at its end, with the
notebook, the step count and an estimate of the time left, to the run's log.txt; the runner
copies those lines to the job's standard error (the terminal, or the SLURM log). Interactively,
it is just tqdm's bar.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

from tqdm.auto import tqdm as _tqdm

from avgas.runfolder import RunFolder

ENV_LOG, ENV_SECONDS, ENV_NOTEBOOK = "AVGAS_PROGRESS_LOG", "AVGAS_PROGRESS_SECONDS", "AVGAS_NOTEBOOK"
# set in a worker of a step run side by side (e.g. separator trainings): its own steps are shown in
# the stage table inside that step, which the caller records with its wall time, and not counted twice
ENV_WITHIN = "AVGAS_STAGE_WITHIN"


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def line(desc: str, n: int, total: int | None, elapsed: float, unit: str = "it", done: bool = False) -> str:
    """One progress line: 'G stand-in: 350/3000 it (12%), 1:02 elapsed, about 7:50 left'."""
    where = os.environ.get(ENV_NOTEBOOK, "")
    head = f"[{where}] " if where else ""
    if done and total and n < total:  # closed early: an interrupt or an error, never "done"
        return f"{head}{desc}: stopped at {n}/{total} {unit} after {_clock(elapsed)}, not finished"
    if done:
        return f"{head}{desc}: done, {n}{f'/{total}' if total else ''} {unit} in {_clock(elapsed)}"
    if total:
        left = f", about {_clock(elapsed / n * (total - n))} left" if n else ""
        return f"{head}{desc}: {n}/{total} {unit} ({100 * n / total:.0f}%), {_clock(elapsed)} elapsed{left}"
    return f"{head}{desc}: {n} {unit}, {_clock(elapsed)} elapsed"


MARK = " PROGRESS "
QUIET = 2.0  # seconds: a step shorter than this writes no progress line


def emit(text: str) -> None:
    """Append a progress line to the run's log (batch runs only); the runner echoes it to the
    job's standard error (see Echo)."""
    log = os.environ.get(ENV_LOG)
    if not log:
        return
    try:
        with open(log, "a") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')}{MARK}{text}\n")
    except OSError:
        pass  # progress must never stop the work (a full disk is reported where the work writes)


def record_stage(desc: str, n: int, total: int | None, seconds: float) -> None:
    """Append a finished step's wall time to the run's stage record (batch runs only), for the
    stage table that `make book` prints (avgas.stages)."""
    log = os.environ.get(ENV_LOG)
    if not log:
        return
    row = {"notebook": os.environ.get(ENV_NOTEBOOK, ""), "step": desc, "n": n, "total": total}
    row.update(seconds=round(seconds, 2), ended=time.strftime("%Y-%m-%dT%H:%M:%S"))
    if os.environ.get(ENV_WITHIN):
        row["within"] = os.environ[ENV_WITHIN]
    try:
        with open(RunFolder(os.path.dirname(log)).stages, "a") as f:  # beside log.txt
            f.write(json.dumps(row) + "\n")
    except OSError:
        pass  # like the progress lines: never stops the work


class Echo:
    """In the runner: while a notebook runs, copy the progress lines its kernel appends to log.txt
    onto the job's standard error (the terminal, a SLURM log)."""

    def __init__(self, log: str | os.PathLike, stream=None, poll: float = 0.5):
        self.log, self.stream, self.poll = log, stream or sys.stderr, poll
        self.stop = threading.Event()
        self.offset = os.path.getsize(log) if os.path.exists(log) else 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _drain(self) -> None:
        try:
            with open(self.log) as f:
                f.seek(self.offset)
                chunk = f.read()
        except OSError:
            return
        done = chunk.rfind("\n") + 1  # whole lines only
        self.offset += len(chunk[:done].encode())
        for ln in chunk[:done].splitlines():
            if MARK in ln:
                print(f"[avgas] {ln.split(MARK, 1)[1]}", file=self.stream, flush=True)

    def _run(self) -> None:
        while not self.stop.wait(self.poll):
            self._drain()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self._drain()


def every() -> float:
    try:
        return max(0.5, float(os.environ.get(ENV_SECONDS, "30")))
    except ValueError:
        return 30.0


class tqdm(_tqdm):  # noqa: N801 - a drop-in for tqdm.auto.tqdm
    """tqdm's bar, which in a batch run also reports to the log at least every `every()` seconds."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._batch = bool(os.environ.get(ENV_LOG)) and not self.disable
        self._t0 = time.monotonic()
        # the first line comes after QUIET seconds, so the many short steps do not flood the log
        self._last = self._t0 - every() + QUIET
        self._said = self._recorded = False

    def update(self, n=1):
        out = super().update(n)
        if getattr(self, "_batch", False) and time.monotonic() - self._last >= every():
            self._last = time.monotonic()
            self._said = True
            emit(line(self.desc.rstrip(": ") or "working", self.n, self.total, self._last - self._t0, self.unit))
        return out

    def close(self):
        # Only the first close speaks: a bar closed again later (tqdm.notebook's widget, or garbage
        # collection, long after the step) would otherwise print "done in <time since it began>".
        if getattr(self, "_batch", False) and not getattr(self, "_recorded", True):
            self._recorded = True
            elapsed = time.monotonic() - self._t0
            record_stage(self.desc.rstrip(": ") or "working", self.n, self.total, elapsed)
            if self._said or elapsed >= QUIET:
                emit(line(self.desc.rstrip(": ") or "working", self.n, self.total, elapsed, self.unit, done=True))
        super().close()

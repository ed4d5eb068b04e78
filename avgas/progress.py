"""Progress a batch run's user can see: the terminal, log.txt, a SLURM log.

In a notebook, a progress bar is a widget that the executed notebook shows only when its cell
ends. So in a batch run (`python -m avgas run`, which sets AVGAS_PROGRESS_LOG), every bar of avgas
also writes a line, at its start, every `progress_seconds` (params) and at its end, with the
notebook, the step count and an estimate of the time left, to the run's log.txt and to the job's
standard error (the terminal, or the SLURM log). Interactively, it is just tqdm's bar.
"""
from __future__ import annotations

import os
import time

from tqdm.auto import tqdm as _tqdm

ENV_LOG, ENV_SECONDS, ENV_NOTEBOOK = "AVGAS_PROGRESS_LOG", "AVGAS_PROGRESS_SECONDS", "AVGAS_NOTEBOOK"


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def line(desc: str, n: int, total: int | None, elapsed: float, unit: str = "it", done: bool = False) -> str:
    """One progress line: 'G stand-in: 350/3000 it (12%), 1:02 elapsed, about 7:50 left'."""
    where = os.environ.get(ENV_NOTEBOOK, "")
    head = f"[{where}] " if where else ""
    if done:
        return f"{head}{desc}: done, {n}{f'/{total}' if total else ''} {unit} in {_clock(elapsed)}"
    if total:
        left = f", about {_clock(elapsed / n * (total - n))} left" if n else ""
        return f"{head}{desc}: {n}/{total} {unit} ({100 * n / total:.0f}%), {_clock(elapsed)} elapsed{left}"
    return f"{head}{desc}: {n} {unit}, {_clock(elapsed)} elapsed"


def emit(text: str) -> None:
    """Append a line to the run's log and write it to the job's standard error (batch runs only)."""
    log = os.environ.get(ENV_LOG)
    if not log:
        return
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    try:
        with open(log, "a") as f:
            f.write(f"{stamp} PROGRESS {text}\n")
    except OSError:
        pass  # progress must never stop the work (a full disk is reported where the work writes)
    try:
        os.write(2, f"[avgas] {text}\n".encode())  # the kernel's fd 2 is the job's stderr
    except OSError:
        pass


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
        self._t0 = self._last = time.monotonic()
        self._reported = False
        if self._batch:
            emit(line(self.desc.rstrip(": ") or "working", self.n, self.total, 0.0, self.unit))

    def update(self, n=1):
        out = super().update(n)
        if getattr(self, "_batch", False) and time.monotonic() - self._last >= every():
            self._last = time.monotonic()
            emit(line(self.desc.rstrip(": ") or "working", self.n, self.total, self._last - self._t0, self.unit))
        return out

    def close(self):
        if getattr(self, "_batch", False) and not self._reported:
            self._reported = True
            emit(line(self.desc.rstrip(": ") or "working", self.n, self.total, time.monotonic() - self._t0,
                      self.unit, done=True))
        super().close()

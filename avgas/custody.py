"""Custody of files: which process holds a folder, which paths are the user's, which files avgas wrote.

Every command that writes goes through this module (the table `COMMANDS` says what each holds;
`tests/test_custody.py` fails when a command of the CLI is missing from it or does not take its
folders' locks):

- **One process per folder.** :func:`hold` takes an OS lock (`<folder>/.avgas.lock`, freed when the
  process dies, so a killed command never leaves a stale lock); a second process is refused by
  name (:class:`BusyError`). Within one process it nests (a command that holds a run folder may
  call code that holds it again).
- **Inputs are never written.** :func:`protect` registers a path the user gave as an input (a
  weight file, VGGSound's csv, a submission); :func:`guard` refuses a write to it or into it
  (:class:`ProtectedPathError`); :func:`refuse_overlap` refuses, before any work, outputs that are
  or contain an input.
- **A record of what avgas wrote.** `<root>/artifacts.json` maps each file a run (or a data
  folder, a build folder) holds to its sha256, size and writer (the notebook or command).
  :func:`watch` records what changed in a folder while a notebook or command ran; :func:`verify`
  names the recorded files that are missing or whose bytes changed (hash-based: a hard-linked
  file verifies like any other); :func:`refuse_foreign` refuses to replace a file avgas did not
  write. :func:`record` is the small API for code that writes outside a watched step.
- **A started run's data is its own.** :func:`refuse_other_run` stops a command that would change
  the data of a run folder made with other params.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from avgas import params as params_mod
from avgas import paths, runfolder

RECORD = "artifacts.json"
LOCK = ".avgas.lock"

# Every CLI command and what it holds while it writes (None: it only reads). The note of issue 23
# and the README's "commands that write" list come from here; a new command must be added.
COMMANDS: dict[str, str | None] = {
    "run": "each run folder (one at a time with --sweep); every notebook's new files recorded; "
    "a finished notebook's files verified before it is skipped",
    "world": "the run folder and the data folder; refused on a run made with other params and on "
    "clips or a csv avgas did not write; the world's files recorded",
    "train": "the run folder (unless notebook 03 launched it under the runner's lock); refused on a "
    "run made with other params; the separators recorded",
    "prepare-vggsound": "the prepared data folder; inputs that overlap its outputs refused before any work",
    "validate": "each run folder; validation.json recorded",
    "explore": "the run folder while the app notebook is written; app/ recorded",
    "book": "the run folder (read) and <out>/_build; a _build/src avgas did not write is refused",
    "assignments": "the output folder; an assignment folder avgas did not build is refused",
    "grade": "the output folder; submissions protected; a grades.csv avgas did not write is refused",
    "plan": "the run folder while plan.json is written (the run's data and weights only read)",
    "select": "the selection's folder runs/<name>-select/ (its candidates); the record beside the params "
    "file, written atomically",
    "params": None,
    "check": None,
}

# Files of a watched folder that are bookkeeping, not results: never recorded or verified.
_BOOKKEEPING = {LOCK, RECORD, *runfolder.BOOKKEEPING}
_SKIP_DIRS = {"previous", ".ipynb_checkpoints", "__pycache__"}


class CustodyError(RuntimeError):
    """A write refused to protect a run or a user's file; the message says what to do."""


class BusyError(CustodyError):
    """Another process holds the folder (a run or an ingestion). The message names it."""


class ForeignFileError(CustodyError):
    """avgas was about to replace a file it did not write."""


class OtherRunError(CustodyError):
    """A command would change the data of a run folder made with other params."""


class ProtectedPathError(PermissionError):
    """avgas was about to write to a path the user gave it as an input. The message names it."""


def _real(p: str | os.PathLike) -> Path:
    return Path(os.path.realpath(Path(p).expanduser()))


# --------------------------------------------------------------------------- one process a folder

_HELD: dict[Path, int] = {}  # folder held by a command (hold_all) in this process -> nesting depth


@contextlib.contextmanager
def hold(folder: str | os.PathLike, what: str, create: bool = True, _command: bool = False):
    """Hold `folder/.avgas.lock` for the duration. A second holder is refused at once, by name;
    only code running inside a command that holds the folder (hold_all) may hold it again.
    `create=False`: a folder that does not exist is not made (the command will say it is missing)."""
    folder = Path(folder)
    key = _real(folder)
    if not create and not folder.is_dir():
        yield folder / LOCK
        return
    guard(folder / LOCK)  # never a lock file inside a user's input
    if _HELD.get(key):
        _HELD[key] += 1
        try:
            yield folder / LOCK
        finally:
            _HELD[key] -= 1
        return
    plain = Path(os.path.abspath(folder))  # without '..': a parent that exists is never taken for one made
    made = [d for d in (plain, *plain.parents) if not d.exists()]  # what the lock alone would leave behind
    lock = folder / LOCK
    f = _open_lock(folder, lock)
    try:
        try:
            _flock(f, lock)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            f.seek(0)
            try:
                holder = json.loads(f.read() or "{}")
            except ValueError:
                holder = {}
            raise BusyError(
                f"{folder} is in use by another avgas process ({holder.get('what', 'unknown')}, pid "
                f"{holder.get('pid', '?')}, since {holder.get('since', '?')}); wait for it to end, or "
                "give this one another folder (-p name=...)"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(json.dumps({"pid": os.getpid(), "what": what, "since": time.strftime("%Y-%m-%dT%H:%M:%S")}))
        f.flush()
        if _command:
            _HELD[key] = 1
        try:
            yield lock
        finally:
            _HELD.pop(key, None)
            with contextlib.suppress(OSError):  # an idle lock file says nothing (and is always the same)
                f.truncate(0)
            _tidy(made, lock)
    finally:
        f.close()  # closing the descriptor releases the lock


def _open_lock(folder: Path, lock: Path):
    folder.mkdir(parents=True, exist_ok=True)
    return open(lock, "a+")


def _flock(f, lock: Path) -> None:
    """Lock the open lock file `f`, and make sure it is still the one at `lock`: a holder that
    ended may have removed it (_tidy) between our open and our lock. Then the one there now (or a
    new one) is opened and locked instead; `f` is that file afterwards. OSError when held."""
    for _ in range(5):
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        try:
            same = os.path.samestat(os.fstat(f.fileno()), os.stat(lock))
        except FileNotFoundError:
            same = False
        if same:
            return
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        g = _open_lock(lock.parent, lock)
        os.dup2(g.fileno(), f.fileno())  # the caller's f now refers to the file at `lock`
        g.close()
    raise OSError(errno.EAGAIN, f"{lock} keeps being replaced")


def _tidy(made: list[Path], lock: Path) -> None:
    """A command that wrote nothing (refused, or stopped before its first file) leaves no folder
    behind: the folders its lock made are removed again, the lock file first, while still held
    (a process that opens it meanwhile is refused, as it would be a moment earlier)."""
    with contextlib.suppress(OSError):
        if not made or [q.name for q in made[0].iterdir()] != [LOCK]:
            return
        lock.unlink()
        for d in made:  # the folder, then the parents it needed, each only while empty
            d.rmdir()


@contextlib.contextmanager
def hold_all(folders, what: str, create: bool = True):
    """What a command holds while it writes: several folders (in a fixed order, so two commands
    never wait on each other); the code it calls may hold them again."""
    with contextlib.ExitStack() as stack:
        for folder in sorted({_real(f): Path(f) for f in folders}.values(), key=lambda f: str(_real(f))):
            stack.enter_context(hold(folder, what, create, _command=True))
        yield


# ------------------------------------------------------------------- inputs are never written

_PROTECTED: dict[Path, str] = {}  # resolved input path -> the params key that names it


def protect(path: str | os.PathLike | None, key: str) -> None:
    """Register a user-given input (file or folder): avgas refuses to write to it or into it."""
    if path:
        _PROTECTED[_real(path)] = key


def unprotect_all() -> None:
    _PROTECTED.clear()


def guard(path: str | os.PathLike) -> None:
    """Refuse a write to a protected input (or into a protected folder)."""
    target = _real(path)
    for p, key in _PROTECTED.items():
        if target == p or p in target.parents:
            raise ProtectedPathError(
                f"{path}: refusing to write here: it is (or is inside) {p}, an input you gave as "
                f"params key '{key}'. avgas never changes its inputs; its outputs go to the run folder."
            )


def refuse_overlap(inputs, outputs, command: str, error=CustodyError, advice: str = "") -> None:
    """Before any work: refuse outputs (key, path) that are, contain or lie inside an input (key, path)."""
    for ikey, inp in inputs:
        if not inp:
            continue
        ri = _real(inp)
        for okey, out in outputs:
            ro = _real(out)
            if ri == ro or ro in ri.parents or ri in ro.parents:
                how = "is the same path as" if ri == ro else ("is inside" if ro in ri.parents else "contains")
                raise error(
                    f"{command} would write {out} (params key '{okey}'), but your input {inp} "
                    f"(params key '{ikey}') {how} it; give them paths apart{advice}"
                )


# ------------------------------------------------------------------------- the artifact record


@dataclass
class Damage:
    path: str  # relative to the record's folder
    writer: str
    why: str


def _hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def read_record(root: str | os.PathLike) -> dict:
    """{relative path: {sha256, size, writer}} of the files avgas wrote under `root`."""
    f = Path(root) / RECORD
    if not f.is_file():
        return {}
    try:
        return json.loads(f.read_text()).get("files", {})
    except (OSError, ValueError):
        return {}


def has_record(root: str | os.PathLike) -> bool:
    return (Path(root) / RECORD).is_file()


def _write_record(root: Path, files: dict) -> None:
    text = json.dumps({"what": "every file avgas wrote here: sha256, size, writer", "files": files}, indent=0)
    paths.atomic_write_text(root / RECORD, text)


def _entry(f: Path, writer: str) -> dict:
    return {"sha256": _hash(f), "size": f.stat().st_size, "writer": writer}


def _rel(root: Path, path: Path) -> str:
    path = Path(path)
    return str(path.relative_to(root) if path.is_absolute() and path.is_relative_to(root) else path)


def record(root: str | os.PathLike, files, writer: str) -> None:
    """Record `files` (paths under `root`, or one path) as written by `writer`, with their hash.
    A file named that no longer exists is dropped from the record."""
    root = Path(root)
    if isinstance(files, (str, os.PathLike)):
        files = [files]
    rec = read_record(root)
    for f in files:
        f = Path(f) if Path(f).is_absolute() else root / f
        rel = _rel(root, f)
        if f.is_file():
            rec[rel] = _entry(f, writer)
        else:
            rec.pop(rel, None)
    _write_record(root, rec)


def forget(root: str | os.PathLike, under: str | os.PathLike) -> None:
    """Drop the record's entries at or under `under` (a folder about to be rebuilt whole)."""
    root = Path(root)
    prefix = _rel(root, Path(under) if Path(under).is_absolute() else root / under)
    rec = read_record(root)
    kept = {r: e for r, e in rec.items() if r != prefix and not r.startswith(prefix.rstrip("/") + "/")}
    if len(kept) != len(rec):
        _write_record(root, kept)


def _walk(root: Path, skip=()) -> dict[str, tuple[int, int]]:
    """{relative path: (size, mtime_ns)} of every file under root but bookkeeping and skipped folders."""
    out = {}
    skip = {_real(s) for s in skip}
    for dirpath, dirs, names in os.walk(root):
        d = Path(dirpath)
        dirs[:] = [x for x in dirs if x not in _SKIP_DIRS and _real(d / x) not in skip]
        for n in names:
            if n in _BOOKKEEPING or (n.startswith(".") and n.endswith(".tmp")):
                continue
            f = d / n
            try:
                st = f.stat()
            except OSError:
                continue
            out[str(f.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out


@contextlib.contextmanager
def watch(root: str | os.PathLike, writer: str, skip=()):
    """Record every file under `root` that appears or changes while the block runs (whatever wrote
    it: torch, soundfile, papermill, a subprocess), as written by `writer`; files it removed leave
    the record. Recorded on the way out, failed or not: what is there is avgas's own."""
    root = Path(root)
    before = _walk(root, skip)
    try:
        yield
    finally:
        after = _walk(root, skip)
        rec = read_record(root)
        changed = [r for r, st in after.items() if before.get(r) != st]
        gone = [r for r in before if r not in after]
        if changed or gone or not has_record(root):
            for r in changed:
                try:
                    rec[r] = _entry(root / r, writer)
                except OSError:
                    rec.pop(r, None)
            for r in gone:
                rec.pop(r, None)
            with contextlib.suppress(OSError):  # a full disk: the next run records again
                _write_record(root, rec)


def verify(root: str | os.PathLike, only=None) -> list[Damage]:
    """The recorded files under `root` that are missing or whose bytes changed (`only`: a set of
    writers to check; None: all). A folder without a record has nothing to verify."""
    root = Path(root)
    bad = []
    for rel, e in sorted(read_record(root).items()):
        if only is not None and e.get("writer") not in only:
            continue
        f = root / rel
        if not f.is_file():
            bad.append(Damage(rel, e.get("writer", "?"), "missing"))
            continue
        size = f.stat().st_size
        if size != e.get("size"):
            bad.append(Damage(rel, e.get("writer", "?"), f"{size} bytes, {e.get('size')} recorded (truncated?)"))
        elif _hash(f) != e.get("sha256"):
            bad.append(Damage(rel, e.get("writer", "?"), "its bytes changed since it was written (sha256 differs)"))
    return bad


def set_aside(root: str | os.PathLike, damaged: list[Damage]) -> Path | None:
    """Move damaged files out of the way (never deleted: `previous/damaged-<time>/`), so the step
    that wrote them writes them again instead of reading them."""
    root = Path(root)
    keep = root / "previous" / f"damaged-{time.strftime('%Y%m%d-%H%M%S')}"
    moved = False
    for d in damaged:
        f = root / d.path
        if f.is_file():
            (keep / d.path).parent.mkdir(parents=True, exist_ok=True)
            os.replace(f, keep / d.path)
            moved = True
    if damaged:
        record(root, [d.path for d in damaged], "set aside")  # the record forgets them
    return keep if moved else None


def adopt(root: str | os.PathLike, windows: list[tuple[str, float, float]]) -> None:
    """Record a folder made before avgas kept a record: each file is attributed to the step whose
    time window (writer, start, end: epoch seconds) holds its modification time (else the last step
    started before it). Its present bytes become the record."""
    root = Path(root)
    windows = sorted(windows, key=lambda w: w[1])
    rec = {}
    for rel, (_, mtime_ns) in _walk(root).items():
        t = mtime_ns / 1e9
        writer = next((w for w, a, b in windows if a - 1 <= t <= b + 1), None)
        if writer is None:
            started = [w for w, a, _ in windows if a <= t]
            writer = started[-1] if started else "run"
        rec[rel] = _entry(root / rel, writer)
    _write_record(root, rec)


def owned(root: str | os.PathLike, path: str | os.PathLike) -> bool:
    """True when avgas recorded `path` (a file, or every file in a folder) under `root`."""
    root, path = Path(root), Path(path)
    rec = read_record(root)
    if path.is_dir():
        files = [f for f in path.rglob("*") if f.is_file() and f.name not in _BOOKKEEPING]
        return all(_rel(root, f) in rec for f in files)
    return _rel(root, path) in rec


def refuse_foreign(root: str | os.PathLike, targets, command: str, made_by_avgas=None, key: str = "") -> None:
    """Refuse to replace an existing file (or a folder holding files) under `root` that avgas did
    not record, unless `made_by_avgas(path)` recognises it as one of avgas's outputs from before
    the record existed."""
    for t in targets:
        t = Path(t)
        present = t.is_file() or (t.is_dir() and any(f.is_file() for f in t.rglob("*")))
        if not present or owned(root, t) or (made_by_avgas and made_by_avgas(t)):
            continue
        raise ForeignFileError(
            f"{t}: {command} would replace this, but avgas did not write it (it is not in "
            f"{Path(root) / RECORD}). Nothing was changed. Give the output its own folder"
            + (f" (params key '{key}')" if key else "")
            + ", or move the file away if it is yours."
        )


# ---------------------------------------------------------------------- a run's data is its own

# Keys that change how a run proceeds, not what it computes: they do not make a run different
# (the README's recipe for a killed run, `-p resume=true`, must continue it, not be refused).
HOW_TO_RUN = (
    "threads",
    "resume",
    "retrain_stand_ins",
    "ingest_workers",
    "progress_seconds",
    "train_processes",
    "train_jobs",
)


def differences(old_file: Path, p) -> list[str]:
    """What differs between a run folder's params.yaml and `p`. A key the old file lacks counts
    only if `p` sets it to something other than its default (a newer avgas adding a key does not
    make an old run a different one)."""
    try:
        old = yaml.safe_load(Path(old_file).read_text()) or {}
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


def started(run_dir: Path) -> bool:
    """A run folder where a run has started (a manifest, or an executed notebook)."""
    return runfolder.RunFolder(run_dir).manifest.is_file() or any(run_dir.glob("[0-9][0-9]_*.ipynb"))


def refuse_other_run(p, command: str) -> None:
    """Refuse a command that would change the data of a run folder made with other params."""
    run_dir = p.run_dir
    if not started(run_dir):
        return
    old = runfolder.RunFolder(run_dir).params
    diff = differences(old, p) if old.is_file() else ["unknown params"]
    if diff:
        raise OtherRunError(
            f"{run_dir} holds a run made with other params ({'; '.join(diff[:6])}{' ...' if len(diff) > 6 else ''}); "
            f"{command} would change its data. Nothing was changed. Give it its own folder (-p name=...)."
        )


# ---------------------------------------------------------------------------- stopped by a signal


STOPPING = False  # set when SIGTERM arrived: a kernel that died with it was interrupted, not failed


class Terminated(KeyboardInterrupt):
    """SIGTERM (a job's time limit, `kill`): stopped like Ctrl-C, and said so."""


@contextlib.contextmanager
def on_sigterm():
    """While the block runs, SIGTERM raises :class:`Terminated`, so a command stops the way Ctrl-C
    stops it: the manifest and log.txt say interrupted, and the terminal says how to continue."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum, frame):
        global STOPPING
        STOPPING = True
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends it at once
        raise Terminated()

    before = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)

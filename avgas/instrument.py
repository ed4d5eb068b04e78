"""The instrument store: stand-ins and judges built once, shared by every run that needs them.

The synthetic world's instrument — the stand-ins f_V, G, f_A and the judges — is a function of the
world's classes, the instrument's own settings and `instrument_seed`, never of a separator
setting. So each part is built once into a content-addressed folder,

    <run_root>/.instrument/<part>-<key>/   the part's files and entry.json (settings, hashes, report)

where <key> hashes exactly the settings that made it. A run that needs the part finds it there
and hard-links its files into its own checkpoints/ (a copy across file systems), so the run
folder stays whole on its own and every loader reads it where it always did. The default run,
its `--sweep` siblings, the ablation and a student's reruns share whatever they share; a part
whose settings differ in any key gets a key of its own and is built anew.

The store is a cache a user can see and delete (`rm -rf runs/.instrument`): nothing in it is read
without its hashes agreeing with entry.json, and a damaged entry is rebuilt.

Runs side by side (`make book`'s two lanes) never build one part twice: a run that finds a part
missing takes the part's build claim (a lock file in <store>/.claims/, held until it publishes
the part, or until its process ends) and another run that needs the same part waits for it, then
takes it from the store.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import pickle
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from avgas import paths, progress

log = logging.getLogger("avgas")

FOLDER = ".instrument"
ENTRY = "entry.json"
WAITING = "waiting for another run to build"  # how a wait for a build claim is named in the stage table


def root(p) -> Path:
    """The store beside the run folders: <run_root>/.instrument (one per run root)."""
    return p.run_dir.parent / FOLDER


def key_of(part: str, settings: dict) -> str:
    """The entry's name: the part and a hash of exactly the settings that make it."""
    text = json.dumps({"part": part, "settings": settings}, sort_keys=True, default=str)
    return f"{part}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


@dataclass(frozen=True)
class Entry:
    """One part of the instrument in the store: `files` maps a name inside the entry to where the
    run keeps that file (e.g. 'swav.pth.tar' -> <run>/checkpoints/swav.pth.tar). A tree entry
    (`tree`) keeps the folder its files lie under, to learn their names from the store."""

    part: str
    settings: dict
    store: Path
    files: tuple[tuple[str, Path], ...]
    root: Path | None = None

    @property
    def key(self) -> str:
        return key_of(self.part, self.settings)

    @property
    def folder(self) -> Path:
        return self.store / self.key


def entry(p, part: str, settings: dict, files: dict[str, Path]) -> Entry:
    return Entry(part, settings, root(p), tuple((name, Path(f)) for name, f in files.items()))


def tree(p, part: str, settings: dict, root: Path, names: list[str] | None = None) -> Entry:
    """An entry of many files under `root` (names relative to it, e.g. a generated world's clips);
    without `names`, the files the store holds for it (none when it holds no such entry)."""
    e = entry(p, part, settings, {})
    return _tree_files(Entry(part, settings, e.store, (), Path(root)), names)


def _tree_files(e: Entry, names: list[str] | None = None) -> Entry:
    if names is None:
        try:
            names = list(json.loads((e.folder / ENTRY).read_text())["hashes"])
        except (OSError, ValueError, KeyError):
            names = []
    return Entry(e.part, e.settings, e.store, tuple((n, e.root / n) for n in names), e.root)


@contextlib.contextmanager
def _locked(store: Path):
    """A short, blocking lock on the store: one process at a time adds or reads an entry (a build
    itself runs outside it; two runs that build the same part at once keep the first entry)."""
    store.mkdir(parents=True, exist_ok=True)
    with open(store / ".lock", "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        yield


_claims: dict[str, object] = {}  # key -> the open claim file this process holds


def claim(e: Entry) -> None:
    """Hold e's build claim; while another process holds it (building the part), wait, saying who."""
    if e.key in _claims:
        return
    folder = e.store / ".claims"
    folder.mkdir(parents=True, exist_ok=True)
    f = open(folder / f"{e.key}.lock", "a+")
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        who = f.read().strip() or "another run"
        log.info("instrument store: %s is being built by %s; waiting for it", e.key, who)
        t0 = time.perf_counter()
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        waited = time.perf_counter() - t0
        log.info("instrument store: waited %.0f s for %s", waited, e.key)
        # its own row in the stage table: time this run spent idle, not working (avgas.stages)
        progress.record_stage(f"{WAITING} {e.part} ({who})", 1, 1, waited)
    f.seek(0)
    f.truncate()
    f.write(f"process {os.getpid()} ({os.environ.get('AVGAS_RUN_NAME', 'a run')})\n")
    f.flush()
    _claims[e.key] = f


def release(e: Entry) -> None:
    """Let go of e's build claim (publish does; a caller that builds nothing to publish calls it)."""
    f = _claims.pop(e.key, None)
    if f is not None:
        f.close()  # closing the file drops the lock


def _whole(e: Entry) -> dict | None:
    """The entry's record when its settings match and every file's bytes are what was stored."""
    try:
        rec = json.loads((e.folder / ENTRY).read_text())
    except (OSError, ValueError):
        return None
    if rec.get("settings") != json.loads(json.dumps(e.settings, default=str)):
        return None
    for name, _ in e.files:
        f = e.folder / name
        if not f.is_file() or rec.get("hashes", {}).get(name) != paths.file_hash(f):
            log.warning("instrument store: %s is damaged or missing; the part is built again", f)
            return None
    return rec


def _place(src: Path, dst: Path) -> None:
    """`dst` becomes `src`'s bytes, atomically: a hard link (no extra disk), or a copy where the
    two lie on different file systems."""
    paths.guard(dst)
    if dst.exists() and os.path.samefile(src, dst):  # already these bytes: left as they are (not rewritten)
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.link")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        os.link(src, tmp)
    except OSError as err:
        if err.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            raise
        shutil.copy2(src, tmp)
    os.replace(tmp, dst)


def whole(e: Entry) -> bool:
    """Whether the store holds the part whole (its files' bytes as stored); nothing is placed."""
    if not e.files:
        return False
    with _locked(e.store):
        return _whole(e) is not None


def fetch(e: Entry, claiming: bool = True) -> dict | None:
    """If the store holds the part whole, place its files where the run keeps them and return the
    report it was built with; None when it must be built. With `claiming`, None comes with the
    part's build claim (held until `publish` or `release`): a part another run is building is
    waited for and taken from the store once it is there."""
    rep = _fetch(e)
    if rep is not None or not claiming:
        return rep
    claim(e)
    rep = _fetch(_tree_files(e) if e.root is not None else e)  # published while we waited?
    if rep is not None:
        release(e)
    return rep


def _fetch(e: Entry) -> dict | None:
    if not e.files:  # nothing the store knows of
        return None
    with _locked(e.store):
        rec = _whole(e)
        if rec is None:
            return None
        for name, dst in e.files:
            _place(e.folder / name, dst)
    log.info("instrument store: %s reused", e.key)
    return rec.get("report", {})


def fetch_or_adopt(e: Entry, own) -> dict | None:
    """fetch(e); else the run's own files of the same settings (made before the store existed, or
    kept after the store was deleted): `own()` returns their report when their saved settings are
    e's (None otherwise); they are then added to the store as they are. None: build the part."""
    rep = fetch(e)
    if rep is not None or not all(dst.is_file() for _, dst in e.files):
        return rep
    try:
        rep = own()
    except (OSError, EOFError, RuntimeError, ValueError, KeyError, pickle.UnpicklingError):
        return None  # unreadable: built again (the claim stays with the caller, who publishes)
    if rep is not None:
        publish(e, rep)
    return rep


def publish(e: Entry, report: dict, seconds: float | None = None) -> None:
    """Add a part the run has just built (its files at the run's paths) to the store: the files are
    linked into a temporary folder that is renamed into place whole, so a reader never sees half
    an entry. An entry already there whole is kept (built by another run meanwhile)."""
    hashes = {name: paths.file_hash(dst) for name, dst in e.files}
    rec = {
        "part": e.part,
        "key": e.key,
        "settings": e.settings,
        "hashes": hashes,
        "report": report,
        "built": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "seconds": seconds,
    }
    try:
        _publish(e, rec)
    finally:
        release(e)


def _publish(e: Entry, rec: dict) -> None:
    with _locked(e.store):
        if _whole(e) is not None:
            return
        tmp = e.store / f".{e.key}.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        for name, dst in e.files:
            _place(dst, tmp / name)
        paths.atomic_write_text(tmp / ENTRY, json.dumps(rec, indent=1, default=str))
        if e.folder.exists():  # a damaged or outdated entry of the same key: replaced whole
            old = e.store / f".{e.key}.{os.getpid()}.old"
            os.replace(e.folder, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(tmp, e.folder)
    log.info("instrument store: %s added", e.key)


def entries(store: Path) -> list[dict]:
    """What a store holds: one row per entry (part, key, size, when built), for `make book`'s
    summary and a user deciding what to delete."""
    rows = []
    for folder in sorted(Path(store).glob("*-*")):
        try:
            rec = json.loads((folder / ENTRY).read_text())
        except (OSError, ValueError):
            continue
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        rows.append(
            {"part": rec.get("part"), "key": folder.name, "MB": round(size / 1e6, 2), "built": rec.get("built")}
        )
    return rows

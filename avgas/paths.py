"""Where things are: the project root, paths given relative to it, and safe writing.

Three rules for every file avgas writes:
- it is written atomically (a temporary file next to it, then a rename), and a failed write
  leaves no temporary file behind;
- it is never a file the user gave as an *input* (a weight file, VGGSound's csv, the videos):
  :mod:`avgas.custody` registers them and refuses a write to one (re-exported here: `protect`,
  `guard`, `ProtectedPathError`);
- a folder is held by one process at a time (`custody.hold`; `exclusive` here is its old name).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import tempfile
from pathlib import Path

from avgas import custody

PACKAGE_DIR = Path(__file__).resolve().parent


def project_root() -> Path:
    """The checkout that holds params/ and notebooks/ (AVGAS_ROOT wins when set).

    Notebooks run with their own folder as working directory, the CLI from anywhere; resolving
    every relative path against one root makes them agree."""
    if os.environ.get("AVGAS_ROOT"):
        return Path(os.environ["AVGAS_ROOT"]).resolve()
    for start in (Path.cwd(), PACKAGE_DIR):
        for d in (start, *start.parents):
            if (d / "params").is_dir() and (d / "avgas").is_dir():
                return d
    return Path.cwd()


def resolve(p: str | os.PathLike) -> Path:
    p = Path(p).expanduser()
    return p if p.is_absolute() else (project_root() / p).resolve()


def _real(p: str | os.PathLike) -> Path:
    """The path with symlinks resolved (as far as it exists), for comparisons."""
    return Path(os.path.realpath(Path(p).expanduser()))


def same_or_inside(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when path `a` is `b` or lies inside folder `b` (symlinks resolved)."""
    ra, rb = _real(a), _real(b)
    return ra == rb or rb in ra.parents


def overlap(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when one of the two paths is, or lies inside, the other."""
    return same_or_inside(a, b) or same_or_inside(b, a)


_UMASK = os.umask(0)
os.umask(_UMASK)


# ------------------------------------------------------------------------------ atomic writes


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file and rename, so a killed process never leaves half a file; on
    any failure (a full disk, a read-only folder) the temporary file is removed."""
    path = Path(path)
    custody.guard(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual mode
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def torch_save_atomic(obj, path) -> None:
    """torch.save, written atomically (a killed run never leaves a half-written checkpoint)."""
    import torch  # heavy: the CLI and the light commands import paths without it

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(Path(path), buf.getvalue())


def file_hash(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes (how a run recognises its own checkpoints, whole and unchanged)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def content_stamp(path: str | os.PathLike) -> str:
    """A hash of a file's bytes, or of every file in a folder (names and bytes): the identity of a
    weight file or folder, unchanged by copying or re-saving the same bytes."""
    path = Path(path)
    files = sorted(path.rglob("*")) if path.is_dir() else [path]
    h = hashlib.sha1()
    for f in files:
        if f.is_file():
            h.update(f.name.encode())
            h.update(file_hash(f).encode())
    return h.hexdigest()


def disk_full(e: OSError) -> bool:
    return e.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


def os_error_message(e: OSError) -> str:
    """An OSError as one line a user can act on (a full disk, a read-only folder, ...)."""
    where = f"{e.filename}: " if e.filename else ""
    if disk_full(e):
        return (
            f"{where}cannot write: {e.strerror} (the disk is full, or a quota or file-size limit was "
            "reached). Free space, or put the run elsewhere (-p run_root=...)."
        )
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS) and not isinstance(e, custody.ProtectedPathError):
        return (
            f"{where}{e.strerror}: avgas cannot write there. Give the run a folder you can write "
            "(-p run_root=... or -p name=...)."
        )
    return f"{where}{e.strerror or ' '.join(str(e).split())}"


# ------------------------------------------ locks and input protection live in avgas.custody

_CUSTODY = {n: n for n in ("BusyError", "ProtectedPathError", "guard", "protect", "unprotect_all")} | {
    "exclusive": "hold"
}


def __getattr__(name: str):
    """custody's names, looked up when used (custody writes its record through this module, so
    neither can take the other's names while it is being imported)."""
    if name in _CUSTODY:
        return getattr(custody, _CUSTODY[name])
    raise AttributeError(f"module 'avgas.paths' has no attribute {name!r}")

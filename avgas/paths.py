"""Where things are: the project root, and paths given relative to it."""
from __future__ import annotations

import os
from pathlib import Path

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


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file and rename, so a killed process never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def torch_save_atomic(obj, path) -> None:
    """torch.save, written atomically (a killed run never leaves a half-written checkpoint)."""
    import io

    import torch
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(Path(path), buf.getvalue())

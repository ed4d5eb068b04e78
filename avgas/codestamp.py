"""Which avgas code a notebook runs, by content: the runner reruns a finished notebook when it changed.

A notebook's results come from the modules it imports as much as from its own cells: after a
`git pull` that changes how results.json is made, a run whose notebooks were skipped would show
the old numbers under the new code. The stamp is the hash of every avgas module a notebook can
reach by its imports (read from the source, not by importing: nothing is loaded), so an edit of
avgas/book.py, which no notebook imports, reruns nothing, and an edit of avgas/results.py reruns
08 and whatever else reaches it. A module counts by its syntax tree without docstrings: comments,
formatting and docstrings change no result, so they rerun nothing. The caches a run keeps
(spectrograms, frozen targets, clip checks) carry the stamp of the code that makes them too.
"""

from __future__ import annotations

import ast
import copy
import hashlib
import json
from pathlib import Path

PACKAGE = "avgas"
ROOT = Path(__file__).resolve().parents[1]  # the folder that holds avgas/
# what a module starts in another process rather than importing: notebook 03 with
# train_processes > 1 launches `python -m avgas train` under torchrun (train.launch)
LAUNCHES = {"avgas.train": ["avgas.__main__"]}
_PARSED: dict[tuple, tuple] = {}  # (file, size, mtime) -> (its imports, its code's hash)


class Unreadable(Exception):
    """Source that does not parse even without IPython's lines: its imports are unknown."""


def _parse(source: str | bytes) -> ast.Module:
    try:
        return ast.parse(source)
    except SyntaxError:
        pass
    text = source.decode() if isinstance(source, bytes) else source
    # a notebook cell with IPython magics, shell lines or help (obj?): read without them
    kept = [ln for ln in text.splitlines() if not ln.lstrip().startswith(("%", "!")) and not ln.rstrip().endswith("?")]
    try:
        return ast.parse("\n".join(kept))
    except SyntaxError as e:
        raise Unreadable(str(e)) from None


def _read(f: Path, root: Path, package: str) -> tuple[set[str], str]:
    """A module's avgas imports and the hash of its code (_code), made once per process."""
    st = f.stat()
    key = (str(f), st.st_size, st.st_mtime_ns)
    if key not in _PARSED:
        tree = _parse(f.read_bytes())  # bytes: the file's own encoding, not the locale's
        _PARSED[key] = (imported(tree, root, package), hashlib.sha1(_code(tree).encode()).hexdigest())
    return _PARSED[key]


def _package(name: str, f: Path) -> str:
    """The package a module's relative imports start from."""
    return name if f.name == "__init__.py" else name.rpartition(".")[0] or PACKAGE


def _module_file(root: Path, name: str) -> Path | None:
    """The file of module `name` ('avgas.judges.clip') under `root` (the folder holding avgas/)."""
    base = root.joinpath(*name.split("."))
    for f in (base.with_suffix(".py"), base / "__init__.py"):
        if f.is_file():
            return f
    return None


def imported(source: str | ast.Module, root: Path, here: str = PACKAGE) -> set[str]:
    """The avgas modules that `source` imports (at any depth of its code: imports inside functions
    count); `here` is the module's own package, for relative imports."""
    tree = source if isinstance(source, ast.Module) else _parse(source)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # from . import x / from ..core import y
                parent = here.split(".")[: len(here.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            if name == PACKAGE or name.startswith(PACKAGE + "."):
                parts = name.split(".")
                for i in range(1, len(parts) + 1):  # avgas.judges.clip also runs avgas/judges/__init__.py
                    if _module_file(root, ".".join(parts[:i])):
                        found.add(".".join(parts[:i]))
    return found


def _everything(root: Path) -> dict[str, Path]:
    """Every module of the package: what a source whose imports cannot be read may reach."""
    files = sorted((root / PACKAGE).rglob("*.py"))
    names = [".".join(f.relative_to(root).with_suffix("").parts).removesuffix(".__init__") for f in files]
    return dict(zip(names, files))


def reached(sources: list[str], root: Path) -> dict[str, Path]:
    """Every avgas module the `sources` (a module's text, or a notebook's cells) reach through
    imports, with its file. A source that cannot be read reaches the whole package."""
    try:
        todo, seen = [m for s in sources for m in imported(s, root)], {}
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            f = _module_file(root, name)
            seen[name] = f
            todo += [*_read(f, root, _package(name, f))[0], *LAUNCHES.get(name, [])]
        return seen
    except Unreadable:
        return _everything(root)


def _code(tree: ast.Module) -> str:
    """A module as it runs: its syntax tree without docstrings."""
    tree = copy.deepcopy(tree)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def stamp(sources: list[str], root: Path = ROOT) -> str:
    """The hash of the avgas code the `sources` run: the modules' names and code, and the
    package's resource files (configurations any module may read)."""
    modules = sorted(reached(sources, root).items())
    resources = sorted(
        f for f in (root / PACKAGE / "resources").rglob("*") if f.is_file() and not f.name.startswith(".")
    )
    names = [m for m, _ in modules] + [f.relative_to(root).as_posix() for f in resources]
    h = hashlib.sha1(json.dumps(names).encode())
    for name, f in modules:
        h.update(_read(f, root, _package(name, f))[1].encode())
    for f in resources:
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def notebook_stamp(nb: Path, root: Path = ROOT) -> str:
    """stamp() of a notebook's code cells."""
    cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
    return stamp(["".join(c["source"]) for c in cells if c["cell_type"] == "code"], root)

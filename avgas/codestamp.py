"""Which avgas code a notebook runs, by content: the runner reruns a finished notebook when it changed.

A notebook's results come from the modules it imports as much as from its own cells: after a
`git pull` that changes how results.json is made, a run whose notebooks were skipped would show
the old numbers under the new code. The stamp is the hash of every avgas module a notebook can
reach by its imports (read from the source, not by importing: nothing is loaded), so an edit of
avgas/book.py, which no notebook imports, reruns nothing, and an edit of avgas/results.py reruns
08 and whatever else reaches it.
"""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

PACKAGE = "avgas"
ROOT = Path(__file__).resolve().parents[1]  # the folder that holds avgas/


def _module_file(root: Path, name: str) -> Path | None:
    """The file of module `name` ('avgas.judges.clip') under `root` (the folder holding avgas/)."""
    base = root.joinpath(*name.split("."))
    for f in (base.with_suffix(".py"), base / "__init__.py"):
        if f.is_file():
            return f
    return None


def imported(source: str, root: Path, here: str = PACKAGE) -> set[str]:
    """The avgas modules that `source` imports (at any depth of its code: imports inside functions
    count); `here` is the module's own package, for relative imports."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # a notebook cell with IPython magics or shell lines: read without them
        tree = ast.parse("\n".join(ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!"))))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # from . import x / from .core import y
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


def reached(sources: list[str], root: Path) -> dict[str, Path]:
    """Every avgas module the `sources` (a module's text, or a notebook's cells) reach through
    imports, with its file."""
    todo, seen = [m for s in sources for m in imported(s, root)], {}
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        f = _module_file(root, name)
        seen[name] = f
        package = name if f.name == "__init__.py" else name.rpartition(".")[0]
        todo += imported(f.read_text(), root, package or PACKAGE)
    return seen


def stamp(sources: list[str], root: Path = ROOT) -> str:
    """The hash of the avgas code the `sources` run: the modules' names and bytes, and the
    package's resource files (configurations any module may read)."""
    files = sorted(reached(sources, root).items())
    files += [(str(f.relative_to(root)), f) for f in sorted((root / PACKAGE / "resources").rglob("*")) if f.is_file()]
    h = hashlib.sha1(json.dumps([name for name, _ in files]).encode())
    for _, f in files:
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def notebook_stamp(nb: Path, root: Path = ROOT) -> str:
    """stamp() of a notebook's code cells."""
    cells = json.loads(nb.read_text())["cells"]
    return stamp(["".join(c["source"]) for c in cells if c["cell_type"] == "code"], root)

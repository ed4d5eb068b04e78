"""Every module of the settings layer imports on its own, in a fresh interpreter: a cycle among
them (paths -> custody -> params -> paper -> paths) breaks whichever is imported first, e.g. a
spawned worker that starts with `import avgas.train` (train.side_by_side)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = [
    "avgas.paths",
    "avgas.custody",
    "avgas.params",
    "avgas.params.schema",
    "avgas.params.loading",
    "avgas.params.design",
    "avgas.paper",
    "avgas.progress",
    "avgas.slots",
    "avgas.layout",
    "avgas.runfolder",
    "avgas.instrument",
    "avgas.runner",
    "avgas.checkpoints",  # the first import of a spawned training worker
]


@pytest.mark.parametrize("module", SETTINGS)
def test_a_settings_module_imports_on_its_own(module):
    r = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr.strip().splitlines()[-1:]

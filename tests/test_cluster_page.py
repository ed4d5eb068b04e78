"""book/cluster.md (issue 25): in the book, every code name it gives exists, and the smoke script
of its three commands stops with one line where there is no GPU."""

import importlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_cluster_page_is_in_the_book_and_names_what_exists():
    assert "file: cluster" in (ROOT / "book" / "_toc.yml").read_text()
    page = (ROOT / "book" / "cluster.md").read_text()
    names = set(re.findall(r"`((?:check|plan|vggsound|duplicates|data|clip)\.[A-Za-z_][\w.]*)`", page))
    assert len(names) >= 10, names
    missing = []
    for name in sorted(names):
        module, *attrs = name.split(".")
        obj = importlib.import_module("avgas.judges.clip" if module == "clip" else f"avgas.{module}")
        for a in attrs:
            obj = getattr(obj, a, None)
        if obj is None:
            missing.append(name)
    assert not missing, missing
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## On a cluster") :]
    commands = [line for line in section.split("```")[1].splitlines() if line.strip() and not line.startswith("bash")]
    said = [c.split() for c in commands if "-m avgas" in c]  # python or .venv/bin/python
    assert [w[w.index("avgas") + 1] for w in said] == ["check", "plan"]
    assert "bash scripts/gpu-smoke.sh" in section and "book/cluster.md" in section


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="a GPU node: the smoke test would run")
def test_the_smoke_script_stops_with_one_line_without_a_gpu(tmp_path):
    r = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu-smoke.sh")],
        env={"AVGAS_PYTHON": sys.executable, "OUT": str(tmp_path / "out"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 1 and r.stderr.strip().startswith("gpu-smoke: no GPU visible to torch"), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    r = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu-smoke.sh")],
        env={"AVGAS_PYTHON": "/nowhere/python", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1 and "no Python at /nowhere/python" in r.stderr

"""Issue 24: one RunFolder, the only place that knows the names of a run's files."""

import re
from pathlib import Path

import pytest

from avgas import params
from avgas.runfolder import METRICS, RunFolder

ROOT = Path(__file__).resolve().parents[1]
# A name spelled outside avgas/runfolder.py on purpose: (file, name) -> why
ELSEWHERE = {
    ("avgas/course.py", "results.json"): "otter's own record of a grading, not a run folder's file",
    # notebook 10 is being rewritten by issue 24 C (its logic moves into the module); drop this then
    ("notebooks/10_beyond.py", "results.json"): "issue 24 C",
    ("notebooks/10_beyond.py", "params.yaml"): "issue 24 C",
}


def _names() -> list[str]:
    folder = RunFolder(Path("run"))
    entries = [a for a, v in vars(RunFolder).items() if isinstance(v, property)]
    return [getattr(folder, a).name for a in entries] + [folder.metrics(m).name for m in METRICS]


def _code(f: Path) -> str:
    """The file without comments and docstrings' prose lines (what runs, roughly)."""
    return "\n".join(re.sub(r"#.*", "", line) for line in f.read_text().splitlines())


def test_the_run_folder_names_every_file_once():
    names = _names()
    assert len(names) == len(set(names)), names
    assert {"results.json", "run.json", "params.yaml", "metrics_crs.json", "log.txt", "checkpoints"} <= set(names)


@pytest.mark.parametrize("where", ["avgas", "notebooks"])
def test_no_module_or_notebook_spells_a_run_files_name(where):
    files = sorted((ROOT / where).rglob("*.py")) if where == "avgas" else sorted((ROOT / where).glob("[0-9][0-9]_*.py"))
    names = [n for n in _names() if "." in n]  # folder names ("data", "cache") are ordinary words
    found = [
        f"{f.relative_to(ROOT)}: {n}"
        for f in files
        if f.name != "runfolder.py"
        for n in names
        if re.search(rf"""["'/]{re.escape(n)}["']""", _code(f)) and (str(f.relative_to(ROOT)), n) not in ELSEWHERE
    ]
    assert not found, f"ask avgas.runfolder.RunFolder for these instead: {found}"


def test_params_and_the_run_folder_agree(tmp_path):
    p = params.load(None, {"run_root": str(tmp_path), "name": "r"})
    assert p.folder == RunFolder(tmp_path / "r") and p.folder.results == tmp_path / "r" / "results.json"
    assert p.cache_dir == p.folder.cache and p.checkpoint_dir == p.folder.checkpoints and p.data_dir == p.folder.data
    assert p.folder.sibling("-seed1").root == tmp_path / "r-seed1"
    with pytest.raises(ValueError, match="no metrics file"):
        p.folder.metrics("fid")

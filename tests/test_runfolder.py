"""Issue 24: one RunFolder (and DataFolder), the only place that knows the names of a run's files."""

import re
from pathlib import Path

import pytest

from avgas import params
from avgas.runfolder import METRICS, DataFolder, RunFolder

ROOT = Path(__file__).resolve().parents[1]
# A name spelled outside avgas/runfolder.py on purpose: (file, name) -> why
ELSEWHERE = {
    ("avgas/course.py", "results.json"): "otter's own record of a grading, not a run folder's file",
    # notebook 10 is being rewritten by issue 24 C (its logic moves into the module); drop this then
    ("notebooks/10_beyond.py", "results.json"): "issue 24 C",
    ("notebooks/10_beyond.py", "params.yaml"): "issue 24 C",
}


def _entries(cls) -> list[str]:
    folder = cls(Path("folder"))
    return [getattr(folder, a).name for a, v in vars(cls).items() if isinstance(v, property)]


def _names() -> list[str]:
    """Every name a run folder or a data folder holds."""
    metrics = [RunFolder(Path("run")).metrics(m).name for m in METRICS]
    return _entries(RunFolder) + metrics + _entries(DataFolder)


def _code(f: Path) -> str:
    """The file without comments and docstrings' prose lines (what runs, roughly)."""
    return "\n".join(re.sub(r"#.*", "", line) for line in f.read_text().splitlines())


def test_the_run_folder_names_every_file_once():
    names = _names()
    assert len(names) == len(set(names)), names
    assert {"results.json", "run.json", "params.yaml", "metrics_crs.json", "log.txt", "checkpoints"} <= set(names)
    assert {"metadata.csv", "ingest.json", "skipped.csv", "audios", "world.json"} <= set(names)


def _spells(code: str, name: str) -> bool:
    """The name as a string of its own ("results.json") or ending a built path (f"{x}/results.json",
    a glob "*/results.json"); a message's prose (<data_root>/metadata.csv) does not count."""
    return re.search(rf"""(["']|[}}*]/){re.escape(name)}["']""", code) is not None


@pytest.mark.parametrize("where", ["avgas", "notebooks"])
def test_no_module_or_notebook_spells_a_run_files_name(where):
    files = sorted((ROOT / where).rglob("*.py")) if where == "avgas" else sorted((ROOT / where).glob("[0-9][0-9]_*.py"))
    names = [n for n in _names() if "." in n]  # folder names ("data", "cache") are ordinary words
    found = [
        f"{f.relative_to(ROOT)}: {n}"
        for f in files
        if f.name != "runfolder.py"
        for n in names
        if _spells(_code(f), n) and (str(f.relative_to(ROOT)), n) not in ELSEWHERE
    ]
    assert not found, f"ask avgas.runfolder.RunFolder for these instead: {found}"


def test_params_and_the_run_folder_agree(tmp_path):
    p = params.load(None, {"run_root": str(tmp_path), "name": "r"})
    assert p.folder == RunFolder(tmp_path / "r") and p.folder.results == tmp_path / "r" / "results.json"
    assert p.cache_dir == p.folder.cache and p.checkpoint_dir == p.folder.checkpoints and p.data_dir == p.folder.data
    assert p.folder.sibling("-seed1").root == tmp_path / "r-seed1"
    assert p.data == DataFolder(tmp_path / "r" / "data") and p.metadata_path == p.data.metadata
    assert p.data.audio("x") == p.data_dir / "audios" / "x.wav" and p.data.image("x", ".png").name == "x.png"
    assert p.weight_path("detector_weights") == p.folder.judges / "detector.pt"  # where the judges are saved
    assert p.weight_path("sound2scene_checkpoint") == p.checkpoint_dir / "sound2scene.pth"
    assert {p.weight_path(k) for k in params.WEIGHT_KEYS} <= {p.folder.weights(k) for k in params.WEIGHT_KEYS}
    with pytest.raises(ValueError, match="no metrics file"):
        p.folder.metrics("fid")

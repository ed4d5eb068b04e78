"""Issue 12: the house rules a maintainer relies on, checked on the committed files (fast)."""

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
ASSIGNMENTS = sorted((ROOT / "notebooks" / "assignments").glob("*.ipynb"))


def cells(nb_path, kind):
    return ["".join(c.source) for c in nbformat.read(nb_path, as_version=4).cells if c.cell_type == kind]


def test_the_notebooks_are_found_from_anywhere():
    assert len(NOTEBOOKS) == 10, NOTEBOOKS  # relative to this file, not to the working directory
    assert [f.stem for f in ASSIGNMENTS] == ["a1_loss", "a2_metrics", "a3_experiment"]


@pytest.mark.parametrize("nb", NOTEBOOKS + ASSIGNMENTS, ids=lambda f: f.stem)
def test_committed_notebooks_have_no_outputs(nb):
    for c in nbformat.read(nb, as_version=4).cells:
        if c.cell_type == "code":
            assert not c.outputs and c.execution_count is None, f"{nb.name}: commit notebooks without outputs"


@pytest.mark.parametrize("name", ["05_fid_is", "06_crs", "07_recall"])
def test_scoring_notebooks_hold_no_file_schema(name):
    """What notebooks 05-07 record is written by avgas.scoring (the one place that knows the files)."""
    code = re.sub(r"#.*", "", "\n".join(cells(ROOT / "notebooks" / f"{name}.ipynb", "code")))  # comments may say
    for forbidden in ("json", "write_text", "metrics_", "per_tuple", "per_combination"):
        assert forbidden not in code, (name, forbidden)


@pytest.mark.parametrize("name", ["03_separator", "06_crs", "07_recall"])
def test_notebooks_show_their_equation_and_the_code_that_implements_it(name):
    path = ROOT / "notebooks" / f"{name}.ipynb"
    assert any("$$" in m for m in cells(path, "markdown")), name
    assert any("report.show_source(" in c for c in cells(path, "code")), name


def test_no_module_outside_the_judges_package_defines_a_judge():
    pattern = re.compile(r"class \w*Judge\b|\bYOLO\(|create_model\(|SceneClassifier\(|def \w*_judge\(")
    offenders = [
        f"{f.relative_to(ROOT)}:{i}"
        for f in sorted((ROOT / "avgas").rglob("*.py"))
        if "judges" not in f.relative_to(ROOT / "avgas").parts
        for i, line in enumerate(f.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert not offenders, offenders


def test_show_source_prints_the_running_code():
    from avgas import losses, report

    shown = []
    import IPython.display

    real = IPython.display.display
    IPython.display.display = shown.append
    try:
        report.show_source(losses.infonce)
    finally:
        IPython.display.display = real
    text = shown[0].data
    assert text.startswith("```python\ndef infonce(") and "l2_logits" in text


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda f: f.stem)
def test_each_notebook_and_its_text_form_say_the_same(nb):
    """notebooks/NN_name.py (jupytext percent) is what a review reads: it must be the notebook's."""
    import jupytext

    text = nb.with_suffix(".py")
    assert text.is_file(), f"{text.name} missing: make notebooks-sync"
    expected = jupytext.writes(jupytext.read(nb), fmt="py:percent")
    assert text.read_text() == expected, f"{nb.name} and {text.name} differ: make notebooks-sync"


def test_every_name_on_the_paper_to_code_page_exists():
    import importlib

    page = (ROOT / "book" / "paper_to_code.md").read_text()
    names = set(re.findall(r"`((?:[a-z_]+)\.[A-Za-z_][\w.]*)`", page))
    assert len(names) > 20, names
    missing = []
    for name in sorted(names):
        module, *attrs = name.split(".")
        obj = importlib.import_module(f"avgas.{module}")
        for a in attrs:
            obj = getattr(obj, a, None)
        if obj is None:
            missing.append(name)
    assert not missing, missing
    toc = (ROOT / "book" / "_toc.yml").read_text()
    assert "file: paper_to_code" in toc

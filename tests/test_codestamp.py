"""A finished notebook reruns when the avgas code it imports changed (a `git pull` would otherwise
leave results.json made by the old code), and only then."""

import json

import nbformat

from avgas import codestamp, runner


def _package(root):
    pkg = root / "avgas"
    (pkg / "core").mkdir(parents=True)
    (pkg / "resources").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "core" / "__init__.py").write_text("")
    (pkg / "core" / "maths.py").write_text("X = 1\n")
    (pkg / "results.py").write_text("def f():\n    from avgas.core import maths  # inside a function\n")
    (pkg / "metrics.py").write_text("from .core.maths import X\n")
    (pkg / "book.py").write_text("import avgas.results\n")  # imported by no notebook
    return pkg


def test_the_stamp_follows_imports_and_nothing_else(tmp_path):
    pkg = _package(tmp_path)
    cells = ["%matplotlib inline\nfrom avgas import results", "x = 1"]
    assert set(codestamp.reached(cells, tmp_path)) == {"avgas", "avgas.results", "avgas.core", "avgas.core.maths"}
    assert set(codestamp.reached(["import avgas.metrics"], tmp_path)) == {
        "avgas",
        "avgas.metrics",
        "avgas.core",
        "avgas.core.maths",
    }  # a relative import
    before = codestamp.stamp(cells, tmp_path)
    (pkg / "book.py").write_text("import avgas.results\n# edited\n")
    assert codestamp.stamp(cells, tmp_path) == before
    (pkg / "core" / "maths.py").write_text("X = 2\n")  # two imports away, inside a function
    assert codestamp.stamp(cells, tmp_path) != before
    changed = codestamp.stamp(cells, tmp_path)
    (pkg / "resources" / "config.json").write_text("{}")
    assert codestamp.stamp(cells, tmp_path) != changed


def test_comments_and_docstrings_rerun_nothing_and_an_unreadable_cell_reaches_everything(tmp_path):
    pkg = _package(tmp_path)
    cells = ["from avgas import metrics"]
    before = codestamp.stamp(cells, tmp_path)
    (pkg / "core" / "maths.py").write_text('"""Numbers."""\n# why\nX = (1)\n')
    assert codestamp.stamp(cells, tmp_path) == before
    (pkg / "core" / "maths.py").write_text("X = 1.0\n")
    assert codestamp.stamp(cells, tmp_path) != before
    assert "avgas.book" in codestamp.reached(["%%bash\necho x\nfor ;;"], tmp_path)  # unknown: all of it


def test_a_finished_notebook_reruns_when_its_code_changed(tmp_path, monkeypatch):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell('params_file = "params/quick.yaml"')
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell("x = 1")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "01_a.ipynb"
    nbformat.write(nb, path)
    monkeypatch.setattr(runner, "notebooks", lambda only=None: [path])
    from avgas import params

    p = params.load("params/quick.yaml", {"run_root": str(tmp_path / "runs")})
    assert isinstance(runner.run(p, progress=False)["01_a"], float)
    assert runner.run(p, progress=False)["01_a"] == "skipped"
    m = json.loads((p.run_dir / "run.json").read_text())
    assert m["notebooks"]["01_a"]["code"] == codestamp.notebook_stamp(path)
    monkeypatch.setattr(codestamp, "notebook_stamp", lambda nb, root=None: "other code")
    assert isinstance(runner.run(p, progress=False)["01_a"], float)
    assert runner.run(p, progress=False)["01_a"] == "skipped"

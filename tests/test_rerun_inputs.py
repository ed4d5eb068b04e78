"""A rerun re-executes a changed notebook and only the notebooks downstream whose inputs its new
run changed (issue 22: a prose edit of notebook 06 must not rerun 07-10 when 06 writes the same)."""

from __future__ import annotations

from pathlib import Path

import papermill

from avgas import params, runner


def _stub(monkeypatch, run_dir: Path, content: dict, executed: list):
    """Notebook execution replaced: each notebook writes its executed copy (new bytes every time,
    as papermill's run times are) and one output file with the bytes `content` says."""

    def execute(nb, out, **kw):
        stem = Path(nb).stem
        executed.append(stem)
        Path(out).write_text(f'{{"cells": [], "run": {len(executed)}}}')
        (run_dir / f"out_{stem}.txt").write_text(content.get(stem, stem))
        # a file that a later notebook rewrites (as 10 adds to results.json, or caches grow)
        if stem == "01_data":
            (run_dir / "shared.txt").write_text("written by 01")
        if stem == "10_beyond":
            (run_dir / "shared.txt").write_text("written by 01, added to by 10")

    monkeypatch.setattr(papermill, "execute_notebook", execute)


def _edit(run_dir: Path, stem: str) -> None:
    """As if notebook `stem`'s prose changed: its recorded source hash no longer matches."""
    m = runner.read_manifest(run_dir)
    m["notebooks"][stem]["source"] = "edited"
    runner._write_manifest(run_dir, m)


def test_a_notebook_edited_reruns_alone_when_it_writes_the_same(tmp_path, monkeypatch):
    p = params.load("params/quick.yaml", {"run_root": str(tmp_path), "name": "r"})
    stems = [nb.stem for nb in runner.notebooks()]
    content, executed = {}, []
    _stub(monkeypatch, p.run_dir, content, executed)
    runner.run(p, progress=False)
    assert executed == stems

    executed.clear()  # nothing changed (a later notebook rewrote a file of 01's: not a change for 02-09)
    runner.run(p, progress=False)
    assert executed == []

    executed.clear()  # 06 edited, its output the same bytes: 06 alone
    _edit(p.run_dir, "06_crs")
    runner.run(p, progress=False)
    assert executed == ["06_crs"]

    executed.clear()  # 06 edited and its output changes: 06 and every notebook after it
    _edit(p.run_dir, "06_crs")
    content["06_crs"] = "other CRS"
    runner.run(p, progress=False)
    assert executed == [s for s in stems if s >= "06"]


def test_a_sibling_run_that_changed_reruns_the_notebooks_that_read_it(tmp_path, monkeypatch):
    p = params.load("params/quick.yaml", {"run_root": str(tmp_path), "name": "r"})
    sibling = tmp_path / "r-sources3"
    sibling.mkdir()
    (sibling / "results.json").write_text('{"CRS": 0.1}')
    executed = []
    _stub(monkeypatch, p.run_dir, {}, executed)
    runner.run(p, progress=False)
    executed.clear()
    (sibling / "results.json").write_text('{"CRS": 0.2}')  # the sibling ran again, with other results
    runner.run(p, progress=False)
    assert executed == list(runner.SIBLING_READERS)

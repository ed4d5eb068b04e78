"""Run folders: skip what finished, refuse to overwrite another run, name the failing cell."""

import json

import nbformat
import pytest

from avgas import params, runner


def _nb(path, *sources):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell('params_file = "params/quick.yaml"')
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell] + [nbformat.v4.new_code_cell(s) for s in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.fixture
def two_notebooks(tmp_path, monkeypatch):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    nbs = [
        _nb(
            folder / "01_a.ipynb",
            "from pathlib import Path; import yaml",
            "p = yaml.safe_load(open(params_file)); Path(p['run_root'], p['name'], 'a.txt').write_text('a')",
        ),
        _nb(folder / "02_b.ipynb", "x = 1 + 1"),
    ]
    monkeypatch.setattr(
        runner,
        "notebooks",
        lambda only=None: [nb for nb in nbs if not only or nb.name[:2] in [o.zfill(2) for o in only]],
    )
    return nbs


def _p(tmp_path, **kw):
    return params.load("params/quick.yaml", {"run_root": str(tmp_path / "runs"), **kw})


def test_rerun_skips_finished_notebooks(tmp_path, two_notebooks):
    p = _p(tmp_path)
    first = runner.run(p, progress=False)
    assert all(isinstance(v, float) for v in first.values()) and (p.run_dir / "a.txt").is_file()
    m = runner.read_manifest(p.run_dir)
    assert {e["status"] for e in m["notebooks"].values()} == {"finished"}
    assert runner.run(p, progress=False) == {"01_a": "skipped", "02_b": "skipped"}
    # threads changes the speed, not the result: still the same run
    assert runner.run(p.replace(threads=1), progress=False)["01_a"] == "skipped"


def test_until_stops_after_a_notebook_and_still_skips_a_finished_one(tmp_path, two_notebooks):
    """make book's lane 2 prepares the ablation with --until 02: --only would execute a finished
    01 again (and rewrite what it wrote) on every later `make book`."""
    p = _p(tmp_path)
    assert list(runner.run(p, progress=False, until="01")) == ["01_a"]
    assert runner.run(p, progress=False, until="1") == {"01_a": "skipped"}
    assert isinstance(runner.run(p, progress=False, only=["01"])["01_a"], float)  # --only always runs it
    with pytest.raises(runner.RunError, match="no notebook '07'"):
        runner.run(p, progress=False, until="07")


def test_an_interrupted_run_continues_where_it_stopped(tmp_path, two_notebooks):
    p = _p(tmp_path)
    runner.run(p, progress=False)
    m = runner.read_manifest(p.run_dir)
    m["notebooks"]["02_b"]["status"] = "running"  # what a kill during 02 leaves behind
    (p.run_dir / "run.json").write_text(json.dumps(m))
    times = runner.run(p, progress=False)
    assert times["01_a"] == "skipped" and isinstance(times["02_b"], float)


def test_a_changed_notebook_reruns_with_everything_after_it_when_what_it_writes_changes(tmp_path, two_notebooks):
    p = _p(tmp_path)
    runner.run(p, progress=False)
    write = "p = yaml.safe_load(open(params_file)); Path(p['run_root'], p['name'], 'a.txt').write_text('{}')"
    _nb(two_notebooks[0], "from pathlib import Path; import yaml", "# a comment: the same output", write.format("a"))
    times = runner.run(p, progress=False)
    assert isinstance(times["01_a"], float) and times["02_b"] == "skipped"  # 02 reads nothing new
    _nb(two_notebooks[0], "from pathlib import Path; import yaml", write.format("b"))
    times = runner.run(p, progress=False)
    assert isinstance(times["01_a"], float) and isinstance(times["02_b"], float)


def test_a_rewritten_cache_file_does_not_rerun_what_follows(tmp_path, two_notebooks):
    """A cache file holds the key it was made for and is remade when another reader asks for
    another key set: its bytes are not an input of later notebooks (a prose edit of 06 once
    cascaded so into 07-10 of the ablation). An output outside cache/ still counts."""
    p = _p(tmp_path)
    write = "p = yaml.safe_load(open(params_file)); r = Path(p['run_root'], p['name']); (r / 'cache').mkdir(exist_ok=True); (r / 'cache' / 'c.pt').write_text('{}'); (r / 'a.txt').write_text('a')"
    _nb(two_notebooks[0], "from pathlib import Path; import yaml", write.format("x"))
    runner.run(p, progress=False)
    _nb(two_notebooks[0], "from pathlib import Path; import yaml", write.format("y"))
    times = runner.run(p, progress=False)
    assert isinstance(times["01_a"], float) and times["02_b"] == "skipped"
    assert (p.run_dir / "cache" / "c.pt").read_text() == "y"


def test_other_params_never_overwrite_silently(tmp_path, two_notebooks):
    p = _p(tmp_path)
    runner.run(p, progress=False)
    before = (p.run_dir / "params.yaml").read_text()
    with pytest.raises(runner.RunError, match=r"other params \(seed: 0 -> 3\).*--overwrite"):
        runner.run(p.replace(seed=3), progress=False)
    assert (p.run_dir / "params.yaml").read_text() == before
    runner.run(p.replace(seed=3), progress=False, overwrite=True)
    kept = list((p.run_dir / "previous").glob("*/01_a.ipynb"))
    assert len(kept) == 1 and "seed: 3" in (p.run_dir / "params.yaml").read_text()


def test_a_failing_cell_is_named_and_its_notebook_kept(tmp_path, two_notebooks):
    _nb(two_notebooks[1], "x = 1", "raise ValueError('boom in 02')")
    p = _p(tmp_path)
    with pytest.raises(
        runner.RunError,
        match=r"02_b.ipynb failed in cell 3 \(`raise ValueError\(.boom in 02.\)`\) \(ValueError: boom in 02\)",
    ):
        runner.run(p, progress=False)
    assert (p.run_dir / "02_b.ipynb").is_file()
    m = runner.read_manifest(p.run_dir)
    assert m["notebooks"]["01_a"]["status"] == "finished" and m["notebooks"]["02_b"]["status"] == "failed"


def test_sweep_gives_each_value_its_own_run(tmp_path):
    runs = params.sweep(_p(tmp_path), "seed=0,1,2")
    assert [r.seed for r in runs] == [0, 1, 2] and len({r.run_dir for r in runs}) == 3
    with pytest.raises(params.ParamsError, match="did you mean 'seed'"):
        params.sweep(_p(tmp_path), "sed=1,2")


def test_cli_refuses_a_misspelt_key_before_anything_runs(tmp_path, capsys):
    from avgas import cli

    assert cli.main(["run", "params/quick.yaml", "-p", f"run_root={tmp_path}", "-p", "epoch=3"]) == 2
    assert "epoch" in capsys.readouterr().err and not (tmp_path / "quick").exists()


def test_a_run_made_before_a_key_existed_is_still_the_same_run(tmp_path, two_notebooks):
    import json

    p = _p(tmp_path)
    runner.run(p, progress=False)
    f = p.run_dir / "params.yaml"
    f.write_text("".join(ln for ln in f.read_text().splitlines(keepends=True) if not ln.startswith("amp:")))
    m = runner.read_manifest(p.run_dir)
    m["params_hash"] = "from-an-older-avgas"
    (p.run_dir / "run.json").write_text(json.dumps(m))
    assert runner.run(p, progress=False) == {"01_a": "skipped", "02_b": "skipped"}
    with pytest.raises(runner.RunError, match="amp: False -> True"):
        runner.run(p.replace(amp=True), progress=False)

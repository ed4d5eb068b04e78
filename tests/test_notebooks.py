"""The notebooks, executed by papermill through the CLI as users run them (slow)."""
import subprocess
import sys

import nbformat
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    r = subprocess.run([sys.executable, "-m", "avgas", "run", "params/quick.yaml", "--only", "01",
                        "-p", f"run_root={root}"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    return root / "quick"


def outputs(nb):
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def test_01_shows_players_images_and_the_tuple(quick_run):
    nb = nbformat.read(quick_run / "01_data.ipynb", as_version=4)
    outs = outputs(nb)
    assert not [o for o in outs if o.output_type == "error"]
    htmls = "".join(o.get("data", {}).get("text/html", "") for o in outs)
    assert htmls.count("<audio") >= 26 + 3  # every class, and the tuple's mix and sources
    pngs = [o for o in outs if "image/png" in o.get("data", {})]
    assert len(pngs) >= 4  # gallery, variety, tuple figures
    assert any("Training tuple" in "".join(c.source) or "Figure 2" in "".join(c.source) for c in nb.cells)
    assert (quick_run / "params.yaml").is_file() and (quick_run / "tuples.csv").is_file()
    assert (quick_run / "cache" / "spec_mix_train.pt").is_file()


def test_committed_notebooks_have_no_outputs():
    from pathlib import Path
    for f in Path("notebooks").glob("*.ipynb"):
        nb = nbformat.read(f, as_version=4)
        for c in nb.cells:
            if c.cell_type == "code":
                assert not c.outputs and not c.execution_count, f

"""Issue 21, item 7: no hand-typed results. README.md may hold a result figure only inside a block
rendered from a run's results.json (<!-- results:begin run=runs/<name> --> ... <!-- results:end -->),
and only one that results.json holds; outside such a block it holds none."""

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

# a result figure: a rate or score with two or more decimals (0.78, +0.067, −0.043), or a count k/n
FIGURE = re.compile(r"(?<![\w.])[+\-−]?\d*\.\d{2,}(?!\w|\.\d)|(?<![\w/])\d+/\d+(?![\w/])")
ARXIV = re.compile(r"\b\d{4}\.\d{4,5}\b")  # the paper's arXiv id, not a result
BLOCK = re.compile(r"<!-- results:begin run=(\S+) -->(.*?)<!-- results:end -->", re.S)


def _prose(text: str) -> str:
    """Text without fenced code blocks and inline code (commands and settings, not results)."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    return re.sub(r"`[^`\n]*`", "", text)


def _norm(figure: str) -> str:
    return figure.replace("−", "-").lstrip("+")


def _held(results: dict) -> set[str]:
    """Every number of results.json as it may be printed (2 or 3 decimals, signed or not), and every
    string (k/n counts)."""
    out: set[str] = set()

    def walk(v):
        if isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, bool):
            return
        elif isinstance(v, (int, float)):
            for d in (2, 3):
                out.add(f"{v:.{d}f}")
        elif isinstance(v, str):
            out.update(FIGURE.findall(v))

    walk(results)
    return {_norm(x) for x in out}


def _constants() -> set[str]:
    """Settings that prose may name (params files, the checks' thresholds): not results."""
    from avgas.judges import checks

    values = [v for k, v in vars(checks).items() if k.isupper() and isinstance(v, float)]
    for f in (ROOT / "params").glob("*.yaml"):
        d = yaml.safe_load(f.read_text()) or {}
        values += [v for v in d.values() if isinstance(v, float)]
    return {f"{v:.{d}f}" for v in values for d in (2, 3)}


def unbacked(readme: str, root: Path = ROOT) -> list[str]:
    """The result figures of a README that no results.json holds: every one outside a results block
    (bar the settings of _constants), and those of a block its run's results.json does not hold."""
    bad = []
    allowed = _constants()
    for run, body in BLOCK.findall(readme):
        f = root / run / "results.json"
        if not f.is_file():  # a fresh clone: the block cannot be checked before its run exists
            continue
        held = _held(json.loads(f.read_text()))
        bad += [x for x in FIGURE.findall(ARXIV.sub("", _prose(body))) if _norm(x) not in held]
    outside = BLOCK.sub("", readme)
    bad += [x for x in FIGURE.findall(ARXIV.sub("", _prose(outside))) if _norm(x) not in allowed]
    return bad


def test_the_readme_holds_no_result_figure_that_results_json_does_not():
    bad = unbacked((ROOT / "README.md").read_text())
    assert not bad, f"README.md holds result figures typed by hand (render them from results.json): {bad[:12]}"


def test_a_typed_figure_is_caught_and_a_rendered_one_passes(tmp_path):
    (tmp_path / "runs" / "x").mkdir(parents=True)
    (tmp_path / "runs" / "x" / "results.json").write_text(
        json.dumps({"results": {"mixed": {"A2A": {"CRS": [0.5812, 0.02]}}}, "claims": [{"k/n": "17/420"}]})
    )
    block = "<!-- results:begin run=runs/x -->\nA2A's mixed CRS 0.58 (17/420){}\n<!-- results:end -->\n"
    assert unbacked("The paper: arXiv 2504.18283.\n" + block.format(""), tmp_path) == []
    assert unbacked(block.format(", Sound2Scene 0.11"), tmp_path) == ["0.11"]  # not in results.json
    assert unbacked("A2A reaches 0.58.\n" + block.format(""), tmp_path) == ["0.58"]  # typed outside the block
    assert unbacked("detector recall 0.78, difference −0.043 [−0.065, +0.024]", tmp_path) == [
        "0.78",
        "−0.043",
        "−0.065",
        "+0.024",
    ]
    assert unbacked("run `python -m avgas run -p mix_lambda=0.25`", tmp_path) == []  # code, not prose

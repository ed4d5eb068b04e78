"""Issue 24: one factory per judge, and one shape, used by both worlds and every caller."""

import dataclasses
import inspect
import re
from pathlib import Path

from avgas import judges

ROOT = Path(__file__).resolve().parents[1]
FACTORIES = {judges.detector: judges.DetectorJudge, judges.clip: judges.ClipJudge, judges.classifier: judges.FidIsJudge}


def test_each_judge_has_one_factory_that_returns_the_one_shape():
    for module, shape in FACTORIES.items():
        sig = inspect.signature(module.judge)
        assert list(sig.parameters)[:4] == ["p", "cat", "size", "progress"], module.__name__
        assert sig.return_annotation == shape.__name__, module.__name__
        assert issubclass(shape, judges.Judge)
        assert {"name", "report", "size", "settings"} <= {f.name for f in dataclasses.fields(shape)}
        assert shape.score is not judges.Judge.score, shape  # its scoring callable
    # the old entries (three per judge, three return shapes) are gone from the package's face
    assert not [n for n in judges.__all__ if n.endswith(("_judge", "_for")) or n.startswith("ensure_")]


def test_no_caller_gets_a_judge_another_way():
    """Outside the judges package, a judge comes from `judges.<judge>.judge(...)` only."""
    other = re.compile(r"\w+_judge\(|ensure_(detector|clip|classifier)\(|_trained_\w+\(|(detector|clip)_for\(")
    files = [f for f in (ROOT / "avgas").rglob("*.py") if "judges" not in f.relative_to(ROOT / "avgas").parts]
    files += sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
    offenders = [
        f"{f.relative_to(ROOT)}:{i}"
        for f in files
        for i, line in enumerate(f.read_text().splitlines(), 1)
        if other.search(line)
    ]
    assert not offenders, offenders


def test_the_fid_is_judge_scores_a_set_through_its_scoring_callable():
    import torch

    from tests.test_metrics import Colour

    g = torch.Generator().manual_seed(0)
    a = (torch.rand(40, 1, 1, 3, generator=g) * 200 + 20 + 20 * torch.rand(40, 8, 8, 3, generator=g)).byte()
    j = judges.FidIsJudge("scene classifier (FID/IS)", {}, 8, {"steps": 1}, fid_feature=Colour(), is_feature=Colour())
    out = j.score(a, real=a)
    assert set(out) == {"IS", "FID"} and abs(out["FID"]) < 1e-2
    assert set(j.score(a)) == {"IS"}  # a mixed image has no true image to compare with (the paper)

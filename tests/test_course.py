"""The course kit (issue 14): otter assign builds student versions and autograders; otter's local
grader gives the solutions full marks, the unanswered student notebooks zero with readable
messages, and a submission with one bug partial marks; grading never writes a submission."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from avgas import course

pytestmark = pytest.mark.slow  # each grading starts a kernel (~15 s); the whole module is a few minutes


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return course.build(tmp_path_factory.mktemp("assignments"))


def _cells(nb: Path) -> str:
    return "\n".join("".join(c["source"]) for c in json.loads(nb.read_text())["cells"])


def _digest(folder: Path) -> dict:
    return {
        str(f.relative_to(folder)): hashlib.sha256(f.read_bytes()).hexdigest() for f in folder.rglob("*") if f.is_file()
    }


def test_build_writes_student_notebooks_and_autograders(built):
    assert set(built) == {"a1_loss", "a2_metrics", "a3_experiment"}
    for name, folder in built.items():
        student = folder / "student" / f"{name}.ipynb"
        assert student.is_file() and (folder / "autograder" / "autograder.zip").is_file()
        text = _cells(student)
        # no solution and no hidden test reaches the students
        assert "BEGIN SOLUTION" not in text and "# BEGIN QUESTION" not in text
        assert "hidden: true" not in text and "hidden=True" not in json.dumps(
            json.loads(student.read_text())["metadata"]
        )
    a1 = _cells(built["a1_loss"] / "student" / "a1_loss.ipynb")
    assert "x.norm(dim=1" not in a1 and "test_l2_logits_scale_invariant" not in a1
    assert 'grader.check("q1")' in a1  # the public tests stay runnable by students


def _grade(built, name, notebook, tmp_path, **env):
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        table = course.grade(built[name], [notebook], tmp_path / "grades")
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    return table.iloc[0], (tmp_path / "grades" / "feedback" / f"{Path(notebook).stem}.txt").read_text()


@pytest.mark.parametrize("name", ["a1_loss", "a2_metrics"])
def test_solutions_score_full_marks_and_students_zero(built, name, tmp_path):
    solution = built[name] / "autograder" / f"{name}.ipynb"
    row, _ = _grade(built, name, solution, tmp_path)
    questions = [c for c in row.index if c.startswith("q")]
    assert row["error"] == "" and row["total"] == 10 and all(row[q] > 0 for q in questions), row.to_dict()

    student = built[name] / "student" / f"{name}.ipynb"
    before = _digest(student.parent)
    row, feedback = _grade(built, name, student, tmp_path)
    assert row["total"] == 0, row.to_dict()
    # readable: the test's own message, not just a traceback
    assert "message:" in feedback and "Test case failed" in feedback
    assert ("must match avgas.core.losses" if name == "a1_loss" else "expected 2/3") in feedback
    assert _digest(student.parent) == before  # the submission's folder is only read


def test_one_bug_gets_partial_marks(built, tmp_path):
    """A1 with the A2A loss taken one way only (l(h, a), no l(a, h)): Q1 and Q2 keep their points,
    Q3 loses the tests that see the bug."""
    solution = built["a1_loss"] / "autograder" / "a1_loss.ipynb"
    nb = json.loads(solution.read_text())
    bug = 0
    for c in nb["cells"]:
        src = "".join(c["source"])
        if "infonce(h, a) + infonce(a, h)" in src:
            c["source"] = src.replace("infonce(h, a) + infonce(a, h)", "2 * infonce(h, a)")
            bug += 1
    assert bug == 1
    sub = tmp_path / "students" / "alice" / "a1_loss.ipynb"
    sub.parent.mkdir(parents=True)
    sub.write_text(json.dumps(nb))
    row, feedback = _grade(built, "a1_loss", sub, tmp_path)
    assert row["q1"] == 3 and row["q2"] == 3, row.to_dict()
    assert 0 < row["q3"] < 4 and 6 < row["total"] < 10, row.to_dict()
    assert "swapping h and a must not change it" in feedback


def test_a_bad_submission_is_a_row_not_a_crash(built, tmp_path):
    bad = tmp_path / "bob.ipynb"
    bad.write_text("{ this is not json")
    good = built["a2_metrics"] / "student" / "a2_metrics.ipynb"
    table = course.grade(built["a2_metrics"], [bad, good], tmp_path / "out")
    assert list(table["submission"]) == [str(bad), str(good)]  # never dropped
    assert "not a readable notebook" in table.iloc[0]["error"] and table.iloc[0]["total"] == 0
    assert bad.read_text() == "{ this is not json"
    assert (tmp_path / "out" / "grades.csv").is_file()


def test_a3_is_graded_against_the_students_own_run(built, quick_run, tmp_path):
    """A3 runs the quick tier with papermill (the finished run is reused) and its answers are
    checked against that run's results.json."""
    root = str(Path(quick_run).parent)
    solution = built["a3_experiment"] / "autograder" / "a3_experiment.ipynb"
    row, feedback = _grade(built, "a3_experiment", solution, tmp_path, AVGAS_RUN_ROOT=root)
    assert row["error"] == "" and row["total"] == 8, (row.to_dict(), feedback)
    student = built["a3_experiment"] / "student" / "a3_experiment.ipynb"
    row, feedback = _grade(built, "a3_experiment", student, tmp_path, AVGAS_RUN_ROOT=root)
    assert row["total"] == 0 and "Test case failed" in feedback

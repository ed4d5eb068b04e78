"""The course kit: assignments on otter-grader, their student versions, and grading a class.

The master notebooks live in notebooks/assignments/ (otter's assign format: solutions between
`# BEGIN SOLUTION` / `# END SOLUTION`, tests as functions, hidden ones marked). `build` runs
`otter assign` on each, giving per assignment

    <out>/<name>/student/<name>.ipynb           what students get (no solutions, no hidden tests)
    <out>/<name>/autograder/autograder.zip      what grades (every test)
    <out>/<name>/autograder/<name>.ipynb        the solution, for the teacher

and `grade` runs `otter run` (local, no Docker) on each submission and writes one CSV of scores.
Why otter rather than nbgrader: one notebook per assignment with the tests beside the question, a
zip that grades anywhere Python runs, and no course database or per-student folder layout.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from avgas import custody, paths

MASTERS = "notebooks/assignments"
OUT = "_build/assignments"


class CourseError(RuntimeError):
    """A problem the teacher can act on (a missing assignment, a bad submission); one line."""


def masters(folder: str | Path = MASTERS) -> dict[str, Path]:
    """Assignment name -> its master notebook."""
    found = sorted(paths.resolve(folder).glob("*.ipynb"))
    if not found:
        raise CourseError(f"no assignment notebooks in {paths.resolve(folder)}")
    return {f.stem: f for f in found}


def _otter(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "otter", *args], capture_output=True, text=True, cwd=cwd, check=False)


def build(out: str | Path = OUT, folder: str | Path = MASTERS) -> dict[str, Path]:
    """Student versions and autograder of every assignment under `out`; returns name -> folder.

    Each assignment is built in a temporary folder beside its place and swapped in whole, so a
    failed build leaves the previous one as it was."""
    out = paths.resolve(out)
    out.mkdir(parents=True, exist_ok=True)
    built = {}
    for name, master in masters(folder).items():
        paths.guard(out / name)
        custody.refuse_foreign(out, [out / name], "assignments", made_by_avgas=lambda f: (f / "autograder").is_dir())
        with tempfile.TemporaryDirectory(dir=out, prefix=f".{name}-") as tmp:
            target = Path(tmp) / name
            r = _otter("assign", "--no-pdfs", "--no-run-tests", str(master), str(target))
            zips = sorted((target / "autograder").glob("*.zip")) if r.returncode == 0 else []
            if len(zips) != 1:
                tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["no autograder zip written"]
                raise CourseError(f"otter assign failed on {master}: {tail[0]}")
            zips[0].rename(target / "autograder" / "autograder.zip")  # a stable name for the docs
            old = out / name
            if old.exists():
                shutil.rmtree(old)
            target.rename(old)
        custody.forget(out, old)
        custody.record(out, [f for f in old.rglob("*") if f.is_file()], "assignments")
        built[name] = old
    return built


@dataclass
class Grade:
    submission: str
    scores: dict[str, float]  # question -> points
    possible: dict[str, float]
    error: str = ""
    feedback: str = ""  # otter's report: each failed test with its message

    @property
    def total(self) -> float:
        return sum(self.scores.values())


def grade_one(autograder: Path, submission: Path) -> Grade:
    """Run otter's local grader on one notebook; never writes next to the submission."""
    if not submission.exists():
        return Grade(str(submission), {}, {}, "file not found (check the path and its spelling)")
    if not submission.is_file() or submission.suffix != ".ipynb":
        return Grade(str(submission), {}, {}, "not a notebook file (.ipynb)")
    try:
        json.loads(submission.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        return Grade(str(submission), {}, {}, f"not a readable notebook ({type(e).__name__})")
    with tempfile.TemporaryDirectory(prefix="avgas-grade-") as tmp:
        # otter runs a copy: the submission itself is only read
        copy = Path(tmp) / "submission" / submission.name
        copy.parent.mkdir()
        shutil.copyfile(submission, copy)
        r = _otter("run", "--no-logo", "-a", str(autograder), "-o", tmp, str(copy), cwd=copy.parent)
        # otter's own record: the one JSON file it writes into -o (a run folder's files are
        # named by avgas.runfolder alone)
        records = sorted(Path(tmp).glob("*.json"))
        result = records[0] if len(records) == 1 else None
        if result is None:
            tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["no results"]
            return Grade(str(submission), {}, {}, f"otter run failed: {tail[0]}")
        tests = json.loads(result.read_text())["tests"]
    scored = [t for t in tests if "max_score" in t and t.get("name") != "Public Tests"]
    return Grade(
        str(submission),
        {t["name"]: float(t.get("score") or 0) for t in scored},
        {t["name"]: float(t["max_score"]) for t in scored},
        feedback="\n\n".join(t.get("output", "") for t in scored),
    )


def _label(submission: str, submissions) -> str:
    """A feedback file name: the notebook's stem, with its folder when two share a stem
    (students/alice/a1_loss.ipynb and students/bob/a1_loss.ipynb)."""
    stem = Path(submission).stem
    same = [s for s in submissions if Path(s).stem == stem]
    return stem if len(same) < 2 else f"{Path(submission).parent.name}-{stem}"


def grade(assignment: str | Path, submissions: list[str | Path], out: str | Path | None = None) -> pd.DataFrame:
    """Grade every submission of one assignment; one row per submission, a column per question,
    written to <out>/grades.csv (default: the assignment's folder under _build/assignments/), and
    each submission's feedback to <out>/feedback/<submission>.txt.

    `assignment` is a name (a1_loss) or a built assignment folder. A submission that cannot be
    graded gets a row with its reason in `error` and no points — it is never dropped."""
    folder = _assignment_folder(assignment)
    autograder = folder / "autograder" / "autograder.zip"
    if not autograder.is_file():
        raise CourseError(f"no autograder at {autograder}: build the assignments first (make assignments)")
    if not submissions:
        raise CourseError("no submissions given")
    for s in submissions:
        paths.protect(paths.resolve(s), "submission")  # grades.csv may sit beside them, never over one
    grades = [grade_one(autograder, paths.resolve(s)) for s in submissions]
    table = pd.DataFrame([{"submission": g.submission, **g.scores, "total": g.total, "error": g.error} for g in grades])
    possible = next((g.possible for g in grades if g.possible), {})
    table.attrs["possible"] = sum(possible.values()) if possible else None
    out = out_folder(assignment, out)
    written = [out / "grades.csv", *(out / "feedback" / f"{_label(g.submission, submissions)}.txt" for g in grades)]
    custody.refuse_foreign(out, written, "grade", made_by_avgas=_ours)
    paths.atomic_write_text(out / "grades.csv", table.to_csv(index=False))
    for g in grades:  # what to hand back to each student
        paths.atomic_write_text(out / "feedback" / f"{_label(g.submission, submissions)}.txt", g.error or g.feedback)
    custody.record(out, written, "grade")
    return table


def _assignment_folder(assignment: str | Path) -> Path:
    return paths.resolve(assignment) if Path(assignment).exists() else paths.resolve(OUT) / str(assignment)


def out_folder(assignment: str | Path, out: str | Path | None = None) -> Path:
    """Where `grade` writes grades.csv and feedback/ (the folder it holds while it writes)."""
    return paths.resolve(out) if out else _assignment_folder(assignment)


def _ours(path: Path) -> bool:
    """grades.csv or feedback of a grade run from before avgas kept a record."""
    if path.name == "grades.csv":
        return path.read_text(errors="replace").startswith("submission,")
    return path.parent.name == "feedback"

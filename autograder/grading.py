"""Grade a class: copy submissions in, autograde each with nbgrader, export CSV and feedback.

Submissions are read, never changed: each is copied into the grading folder's `submitted/` tree.
A folder of submissions holds one folder per student, with the notebooks either directly inside
or inside a folder named after the assignment (nbgrader's own layout).
"""
import csv
import os
import sys
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.apps import NbGraderAPI
from nbgrader.coursedir import CourseDirectory

from autograder.config import ASSIGNMENT, course_config

__all__ = ["GradingError", "StudentResult", "make_api", "prepare_gradebook", "grade_class", "generate_release"]

log = logging.getLogger(__name__)


class GradingError(RuntimeError):
    """A problem with the input that stops grading, with a message saying how to fix it."""


@dataclass
class StudentResult:
    student: str
    status: str  # "graded" or an explanation
    scores: dict[str, float] = field(default_factory=dict)  # grade cell id -> points
    total: float = 0.0
    max_total: float = 0.0


def _venv_on_path() -> None:
    # nbgrader creates the gradebook by running the `alembic` command of this environment.
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


def make_api(grading_root: Path, **kw) -> NbGraderAPI:
    (Path(grading_root) / "exchange").mkdir(parents=True, exist_ok=True)  # nbgrader changes into the root
    _venv_on_path()
    config = course_config(grading_root, **kw)
    coursedir = CourseDirectory(config=config)
    return NbGraderAPI(coursedir=coursedir, config=config)


def _check(result: dict, what: str) -> None:
    if not result.get("success"):
        log_text = result.get("log") or ""
        reasons = [line.strip() for line in log_text.splitlines()
                   if line.startswith(("[ERROR]", "[CRITICAL]")) or "Error:" in line]
        log.debug("%s", log_text)
        raise GradingError(f"{what} failed: {' | '.join(reasons[-3:]) or result.get('error', '')[-300:]}")


def generate_release(release_root: Path, grading_root: Path) -> None:
    """Run nbgrader generate_assignment from source/ into `release_root` (gradebook under grading_root)."""
    api = make_api(grading_root, release_root=release_root)
    _check(api.generate_assignment(ASSIGNMENT, force=True, create=True), "nbgrader generate_assignment")


def prepare_gradebook(grading_root: Path) -> NbGraderAPI:
    """Create the gradebook entries of the assignment (cells, points, checksums) from source/."""
    grading_root.mkdir(parents=True, exist_ok=True)
    scratch = grading_root / "release"
    api = make_api(grading_root, release_root=scratch)
    _check(api.generate_assignment(ASSIGNMENT, force=True, create=True), "nbgrader generate_assignment")
    return api


def find_submission(student_dir: Path) -> Path:
    """The folder holding a student's notebooks (the student's folder or its assignment subfolder)."""
    nested = student_dir / ASSIGNMENT
    folder = nested if nested.is_dir() else student_dir
    if not any(folder.glob("*.ipynb")):
        raise GradingError(f"{student_dir.name}: no notebook (*.ipynb) found in {folder}; "
                           f"expected {student_dir}/<notebook>.ipynb or {nested}/<notebook>.ipynb")
    return folder


def copy_submission(folder: Path, grading_root: Path, student: str) -> None:
    dest = grading_root / "submitted" / student / ASSIGNMENT
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(folder, dest, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))


def read_scores(grading_root: Path, student: str) -> tuple[dict[str, float], float, float]:
    api = make_api(grading_root)
    with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gb:
        submission = gb.find_submission(ASSIGNMENT, student)
        scores = {}
        for nb in submission.notebooks:
            for grade in nb.grades:
                scores[f"{nb.name}:{grade.name}"] = grade.score
        return scores, submission.score, submission.max_score


def grade_class(submissions: Path, grading_root: Path, *, feedback: bool = True) -> list[StudentResult]:
    """Grade every student folder under `submissions`; one student's problem never stops the others."""
    submissions = Path(submissions)
    if not submissions.is_dir():
        raise GradingError(f"submissions folder {submissions} does not exist; pass SUBMISSIONS=<folder with one folder per student>")
    students = sorted(p for p in submissions.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not students:
        raise GradingError(f"{submissions} holds no student folders; expected {submissions}/<student>/<notebook>.ipynb")
    api = prepare_gradebook(grading_root)
    results = []
    for student_dir in students:
        student = student_dir.name
        try:
            copy_submission(find_submission(student_dir), grading_root, student)
            _check(api.autograde(ASSIGNMENT, student, force=True, create=True), f"autograde of {student}")
            if feedback:
                _check(api.generate_feedback(ASSIGNMENT, student, force=True), f"feedback of {student}")
            scores, total, max_total = read_scores(grading_root, student)
            results.append(StudentResult(student, "graded", scores, total, max_total))
        except (GradingError, MissingEntry) as e:
            log.error("%s", e)
            results.append(StudentResult(student, f"not graded: {str(e).splitlines()[0]}"))
    return results


def write_csv(results: list[StudentResult], path: Path) -> list[str]:
    """One row per student, one column per graded cell; written to a temporary file, then renamed."""
    columns = sorted({cell for r in results for cell in r.scores})
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "status", "total", "max_total", *columns])
        for r in results:
            writer.writerow([r.student, r.status, r.total, r.max_total, *[r.scores.get(c, "") for c in columns]])
    tmp.replace(path)
    return columns


def format_table(results: list[StudentResult]) -> str:
    width = max([len(r.student) for r in results] + [7])
    lines = [f"{'student':<{width}}  {'score':>13}  status"]
    for r in results:
        score = f"{r.total:g} / {r.max_total:g}" if r.status == "graded" else "-"
        lines.append(f"{r.student:<{width}}  {score:>13}  {r.status}")
    return "\n".join(lines)

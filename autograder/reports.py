"""What a graded class produces: each student's result, the CSV exports and the table the CLI prints."""
import csv
from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.api import Gradebook

from autograder.gradebook import make_api
from autograder.lms import lms_column
from autograder.sandbox import UNSAFE

__all__ = ["StudentResult", "csv_status", "write_csv", "write_nbgrader_csv", "write_lms_csv", "format_table",
           "progress_line"]


@dataclass
class StudentResult:
    """One student's outcome: graded with scores, or a status saying why not."""
    student: str
    status: str  # "graded" or an explanation
    scores: dict[str, float] = field(default_factory=dict)  # "<notebook>:<grade id>" -> points
    total: float = 0.0
    max_total: float = 0.0
    notes: list[str] = field(default_factory=list)  # late, missing notebooks, degraded sandbox, ...
    seconds: float = 0.0


def csv_status(result: StudentResult) -> str:
    """The status column of the CSVs: the status, and UNSAFE when the kernel ran without a sandbox."""
    return f"{result.status} ({UNSAFE})" if UNSAFE in result.notes else result.status


def write_csv(results: list[StudentResult], path: Path) -> list[str]:
    """One row per student, one column per graded cell; written to a temporary file, then renamed."""
    columns = sorted({cell for r in results for cell in r.scores})
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "status", "total", "max_total", *columns])
        for r in results:
            writer.writerow([r.student, csv_status(r), r.total, r.max_total, *[r.scores.get(c, "") for c in columns]])
    tmp.replace(path)
    return columns


def write_nbgrader_csv(grading_root: Path, path: Path) -> None:
    """nbgrader's own CSV export (one row per student and assignment), as `nbgrader export` writes it."""
    from nbgrader.plugins.export import CsvExportPlugin
    api = make_api(grading_root)
    with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gb:
        CsvExportPlugin(to=str(path)).export(gb)


def write_lms_csv(results: list[StudentResult], path: Path) -> list[str]:
    """One row per student, one column per exercise (notebook: exercise, points summed over its graded
    cells) and a total: the layout gradebook imports of common LMSs accept."""
    exercises: dict[str, dict[str, float]] = {}
    for r in results:
        per = exercises.setdefault(r.student, {})
        for cell, score in r.scores.items():
            exercise = lms_column(cell)  # the exercise each check declares; written answers on their own
            per[exercise] = per.get(exercise, 0.0) + (score or 0.0)
    columns = sorted({e for per in exercises.values() for e in per})
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student", *columns, "total", "max_total", "status"])
        for r in results:
            per = exercises[r.student]
            writer.writerow([r.student, *[per.get(c, "") for c in columns], r.total, r.max_total, csv_status(r)])
    tmp.replace(path)
    return columns


def format_table(results: list[StudentResult]) -> str:
    """The final table: score, status and the notes of every student."""
    width = max([len(r.student) for r in results] + [7])
    lines = [f"{'student':<{width}}  {'score':>13}  {'time':>6}  status"]
    for r in results:
        name = r.student if r.student.isprintable() else ascii(r.student)  # a folder name may hold any byte
        score = f"{r.total:g} / {r.max_total:g}" if r.status == "graded" else "-"
        seconds = f"{r.seconds:.0f} s" if r.seconds else ""
        status = "; ".join([r.status, *r.notes])
        lines.append(f"{name:<{width}}  {score:>13}  {seconds:>6}  {status}")
    graded = sum(r.status == "graded" for r in results)
    lines.append(f"{graded} of {len(results)} submissions graded")
    return "\n".join(lines)


def progress_line(done: int, total: int, result: StudentResult) -> str:
    """A one-line progress bar with the last student's status."""
    width = 24
    filled = round(width * done / total)
    status = f"{result.total:g}/{result.max_total:g}" if result.status == "graded" else result.status
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {result.student}: {status}"

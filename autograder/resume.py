"""Resuming a killed run: students already graded from the same files are kept, the others graded again.

After a student's grades are in the gradebook, a status marker `<grading root>/status/<student>.json`
records the submission's fingerprint and the result, written last (temporary file, then renamed): a
run killed before it grades that student again. A later run keeps the marker's result only when the
fingerprint (the submission's files and the master notebooks) and the gradebook's scores still match.
"""
import hashlib
import json
from dataclasses import asdict
from pathlib import Path

from nbgrader.api import MissingEntry

from autograder.config import ASSIGNMENT, REPO_ROOT
from autograder.gradebook import read_scores, source_digest
from autograder.intake import submission_digest
from autograder.reports import StudentResult

__all__ = ["submission_fingerprint", "write_marker", "earlier_result"]

KEPT_NOTE = "kept from an earlier run (--regrade grades it again)"


def submission_fingerprint(student_dir: Path, source_root: Path | None) -> str:
    """Content hash of a submission and of the assignment's sources: a changed one is graded again.
    Empty when the submission cannot be read (graded again, and intake reports why)."""
    try:
        student = submission_digest(student_dir)
    except OSError:
        return ""
    if not student:
        return ""
    sources = source_digest(Path(source_root or REPO_ROOT / "source") / ASSIGNMENT)
    return hashlib.sha256(f"{student}\0{sources}".encode()).hexdigest()


def _marker(grading_root: Path, student: str) -> Path:
    return Path(grading_root) / "status" / f"{student}.json"


def write_marker(grading_root: Path, student: str, fingerprint: str, result: StudentResult) -> None:
    """Record that `student` is graded from the files with `fingerprint` (the last step of grading them)."""
    marker = _marker(grading_root, student)
    marker.parent.mkdir(parents=True, exist_ok=True)
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(json.dumps({"digest": fingerprint, "result": asdict(result)}))
    tmp.replace(marker)


def earlier_result(grading_root: Path, student: str, fingerprint: str) -> StudentResult | None:
    """The result of an earlier run that graded exactly this submission, if its grades are in the gradebook."""
    try:
        saved = json.loads(_marker(grading_root, student).read_text())
        if saved["digest"] != fingerprint:
            return None
        scores, total, max_total = read_scores(grading_root, student)
    except (OSError, ValueError, KeyError, MissingEntry):
        return None
    result = StudentResult(**saved["result"])
    if (scores, total, max_total) != (result.scores, result.total, result.max_total):
        return None
    result.notes = [*result.notes, KEPT_NOTE]
    return result

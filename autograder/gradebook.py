"""The nbgrader side of a grading root: its API, the assignment's entries in the gradebook, the scores.

Everything nbgrader keeps (gradebook, submitted, autograded and feedback notebooks) lives under one
grading root, configured by `autograder.config.course_config`. Callers that share a grading root with
other processes hold its `GradebookLock` around these calls.
"""
import hashlib
import logging
import os
import shutil
import sys
from pathlib import Path

import nbgrader
from nbgrader.api import Gradebook
from nbgrader.apps import NbGraderAPI
from nbgrader.coursedir import CourseDirectory

from autograder.config import ASSIGNMENT, REPO_ROOT, course_config
from workbook.cache import build_once, cache_dir

__all__ = ["GradingError", "make_api", "require_success", "source_digest", "prepare_gradebook", "empty_gradebook", "read_scores",
           "gradebook_notes"]

log = logging.getLogger(__name__)

SOURCE_STAMP = Path("status") / "source.sha256"  # under the grading root: the sources the gradebook holds


class GradingError(RuntimeError):
    """A problem with the input that stops grading, with a message saying how to fix it."""


def _venv_on_path() -> None:
    # nbgrader creates the gradebook by running the `alembic` command of this environment.
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


def empty_gradebook(course_id: str) -> Path:
    """A new gradebook of `course_id` as nbgrader makes it, made once per nbgrader release in the cache.

    nbgrader starts every new gradebook by running alembic's command line, a new Python, to learn its
    schema's version: about 2 s of each new grading root, which copying this file saves.
    """
    def write(folder: Path) -> dict:
        Gradebook(f"sqlite:///{folder / 'gradebook.db'}", course_id).close()
        return {}
    params = {"nbgrader": nbgrader.__version__, "course_id": course_id}
    return build_once(cache_dir() / "gradebooks" / f"{course_id}-nbgrader-{nbgrader.__version__}", params, write) / "gradebook.db"


def _start_gradebook(db: Path, course_id: str) -> None:
    """Start a missing gradebook as a copy of `empty_gradebook` (if that fails, nbgrader makes it itself)."""
    if db.exists():
        return
    partial = db.with_name(f".{db.name}.{os.getpid()}.partial")
    try:
        shutil.copyfile(empty_gradebook(course_id), partial)
        os.link(partial, db)  # never over a gradebook another process started meanwhile
    except FileExistsError:
        pass
    except OSError as e:  # e.g. a read-only cache
        log.debug("gradebook %s left to nbgrader: %s", db, e)
    finally:
        partial.unlink(missing_ok=True)


def make_api(grading_root: Path, **config) -> NbGraderAPI:
    """nbgrader's API on `grading_root`; `config` as `course_config` takes it."""
    (Path(grading_root) / "exchange").mkdir(parents=True, exist_ok=True)  # nbgrader changes into the root
    _venv_on_path()
    settings = course_config(grading_root, **config)
    _start_gradebook(Path(settings.CourseDirectory.db_url.removeprefix("sqlite:///")), settings.CourseDirectory.course_id)
    return NbGraderAPI(coursedir=CourseDirectory(config=settings), config=settings)


def require_success(result: dict, what: str) -> None:
    """Raise GradingError with the log's error lines when an nbgrader API call did not succeed."""
    if not result.get("success"):
        log_text = result.get("log") or ""
        reasons = [line.strip() for line in log_text.splitlines()
                   if line.startswith(("[ERROR]", "[CRITICAL]")) or "Error:" in line]
        log.debug("%s", log_text)
        raise GradingError(f"{what} failed: {' | '.join(reasons[-3:]) or result.get('error', '')[-300:]}")


def source_digest(folder: Path) -> str:
    """Content hash of a folder of master notebooks (names and bytes; editor checkpoints left out)."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and ".ipynb_checkpoints" not in p.parts):
        h.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def prepare_gradebook(grading_root: Path, **config) -> NbGraderAPI:
    """Create the gradebook entries of the assignment (cells, points, checksums) from source/."""
    grading_root.mkdir(parents=True, exist_ok=True)
    scratch = grading_root / "release"
    api = make_api(grading_root, release_root=scratch, **config)
    source = Path(config.get("source_root") or REPO_ROOT / "source") / ASSIGNMENT
    stamp, digest = grading_root / SOURCE_STAMP, source_digest(source)
    if (grading_root / "gradebook.db").exists() and stamp.exists() and stamp.read_text() == digest:
        return api  # the gradebook already holds exactly these sources (saves a generate_assignment per run)
    result = api.generate_assignment(ASSIGNMENT, force=True, create=True)
    if not result.get("success") and "Cannot modify existing assignment" in (result.get("log") or ""):
        raise GradingError(f"source/ changed (cells or notebooks added or removed) since the gradebook in {grading_root} "
                           f"graded its first submission, and nbgrader will not change a graded assignment. "
                           f"Grade into a new folder (--grading-root NEW, or move {grading_root} away); "
                           f"nothing was changed.")
    require_success(result, "nbgrader generate_assignment")
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(digest)
    return api


def read_scores(grading_root: Path, student: str) -> tuple[dict[str, float], float, float]:
    """({"<notebook>:<grade id>": points}, total after the late penalty, max total) of a graded student."""
    api = make_api(grading_root)
    with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gb:
        submission = gb.find_submission(ASSIGNMENT, student)
        scores = {}
        for nb in submission.notebooks:
            for grade in nb.grades:
                scores[f"{nb.name}:{grade.name}"] = grade.score
        # The total after nbgrader's late penalty (as its CSV export computes it); cells keep their scores.
        total = max(0.0, submission.score - (submission.late_submission_penalty or 0.0))
        return scores, total, submission.max_score


def gradebook_notes(grading_root: Path, student: str, late_policy: str) -> list[str]:
    """Notes for the table from the gradebook: lateness (and what the policy did), and the points of
    answers that wait for a person (written answers, graded in formgrader)."""
    api = make_api(grading_root)
    with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gb:
        submission = gb.find_submission(ASSIGNMENT, student)
        late = submission.total_seconds_late
        by_hand = sum(g.max_score for nb in submission.notebooks for g in nb.grades if g.needs_manual_grade)
    notes = []
    if late:
        effect = "scored 0 (late policy: zero)" if late_policy == "zero" else "graded without penalty (late policy: none)"
        notes.append(f"late by {late / 3600:.1f} h: {effect}")
    if by_hand:
        notes.append(f"{by_hand:g} points of written answers to grade by hand (formgrader)")
    return notes

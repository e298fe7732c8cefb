"""Grade on submit: watch the exchange's inbound folder, grade each new submission in the sandbox, release
its feedback.

nbgrader leaves grading to the instructor (its issue #988 asks for this). This service runs as the
instructor (who may list the course's inbound folder), polls it every few seconds, and for each
submission it has not finished — a (student, timestamp) pair — copies it, grades it with
`grade_class` into the course's gradebook (formgrader's), and releases its feedback through nbgrader.
The submissions waiting together are graded in one run (one per student; `--jobs` kernels at once),
so a burst before a deadline is not graded one kernel start after another. The delay from submitting
to feedback is the wait for the next poll and for the run in progress, plus the run's grading time.

It survives restarts: `<course>/.on_submit/` records a submission as started before grading and as
done only after its feedback is released, each file written whole (temporary file, then renamed).
A submission done is never graded again; one started but not done (the service was killed while
grading it) is graded again; a resubmission has a new timestamp and is graded as new.

    python -m autograder.on_submit --course ~/course --exchange /srv/sizing-and-tta/exchange
"""
import argparse
import hashlib
import json
import logging
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import datetime, UTC
from pathlib import Path

from nbgrader.apps import NbGraderAPI
from nbgrader.coursedir import CourseDirectory

from autograder.config import ASSIGNMENT, COURSE_ID, course_config
from autograder.gradebook import GradingError
from autograder.grading import grade_class

__all__ = ["Submission", "inbound_submissions", "Ledger", "grade_submission", "grade_submissions", "watch"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Submission:
    """One folder of the inbound exchange: `<student>+<assignment>+<timestamp>[+<random>]`."""
    student: str
    timestamp: str
    folder: Path

    @property
    def key(self) -> str:
        return hashlib.sha256(f"{self.student}\0{self.timestamp}".encode()).hexdigest()[:32]

    def submitted_at(self) -> datetime | None:
        try:
            return datetime.strptime(self.timestamp.removesuffix(" UTC"), "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)
        except ValueError:
            return None


def inbound_submissions(inbound: Path, assignment: str = ASSIGNMENT) -> list[Submission]:
    """The submissions of `assignment` in an nbgrader inbound folder, oldest first."""
    found = []
    for folder in Path(inbound).iterdir() if Path(inbound).is_dir() else []:
        parts = folder.name.split("+")
        if folder.is_dir() and len(parts) >= 3 and parts[1] == assignment:
            found.append(Submission(parts[0], parts[2], folder))
    return sorted(found, key=lambda s: (s.timestamp, s.student))


class Ledger:
    """What the service started and finished, by submission, in a folder (survives restarts)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        for state in ("started", "done"):
            (self.folder / state).mkdir(parents=True, exist_ok=True)

    def _write(self, path: Path, record: dict) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record))
        tmp.replace(path)

    def read(self, state: str, sub: Submission) -> dict | None:
        path = self.folder / state / f"{sub.key}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def start(self, sub: Submission) -> int:
        """Record an attempt; returns its number (2 or more: an earlier attempt was killed)."""
        attempt = (self.read("started", sub) or {}).get("attempts", 0) + 1
        self._write(self.folder / "started" / f"{sub.key}.json",
                    {"student": sub.student, "timestamp": sub.timestamp, "attempts": attempt})
        return attempt

    def finish(self, sub: Submission, record: dict) -> None:
        self._write(self.folder / "done" / f"{sub.key}.json", {"student": sub.student, "timestamp": sub.timestamp, **record})


def _api(course: Path, exchange: Path, source_root: Path | None) -> NbGraderAPI:
    config = course_config(course, source_root=source_root, release_root=course / "release")
    config.Exchange.root = str(exchange)
    config.CourseDirectory.course_id = COURSE_ID
    return NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)


def _batch(pending: list[Submission]) -> list[Submission]:
    """The oldest waiting submission of each student: a grading run holds one folder per student."""
    batch, students = [], set()
    for sub in pending:
        if sub.student not in students:
            batch.append(sub)
            students.add(sub.student)
    return batch


def grade_submissions(subs: list[Submission], course: Path, exchange: Path, source_root: Path | None = None,
                      sandbox: dict | None = None, jobs: int = 1) -> dict[Submission, dict]:
    """Grade submissions of distinct students in one sandboxed run (`jobs` notebooks at once) into the
    course's gradebook, then release each graded student's feedback; {submission: record}."""
    if len({sub.student for sub in subs}) != len(subs):
        raise GradingError("one grading run takes one submission per student; grade the others in the next")
    staging = course / ".on_submit" / "staging" / hashlib.sha256("".join(s.key for s in subs).encode()).hexdigest()[:32]
    shutil.rmtree(staging, ignore_errors=True)
    for sub in subs:
        shutil.copytree(sub.folder, staging / sub.student / ASSIGNMENT)
    try:
        results = {r.student: r for r in grade_class(staging, course, source_root=source_root, sandbox=sandbox,
                                                     jobs=jobs)}
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    api = _api(course, exchange, source_root)
    records = {}
    for sub in subs:
        result = results[sub.student]
        records[sub] = {"status": result.status, "total": result.total, "max_total": result.max_total,
                        "notes": result.notes}
        if result.status == "graded":
            released = api.release_feedback(ASSIGNMENT, sub.student)
            if not released.get("success"):
                raise GradingError(f"release_feedback of {sub.student} failed: {released.get('error', '')[-300:]}")
    return records


def grade_submission(sub: Submission, course: Path, exchange: Path, source_root: Path | None = None,
                     sandbox: dict | None = None) -> dict:
    """Grade one submission in the sandbox into the course's gradebook, then release its feedback."""
    return grade_submissions([sub], course, exchange, source_root, sandbox)[sub]


def watch(course: Path, exchange: Path, *, source_root: Path | None = None, poll: float = 5.0,
          once: bool = False, sandbox: dict | None = None, jobs: int = 1, report=print) -> None:
    """Grade every submission not yet done, oldest first, all waiting students in one run of `jobs`
    parallel kernels (a student's later submissions in the runs after); then poll for new ones (or
    return, with once)."""
    course, exchange = Path(course).resolve(), Path(exchange).resolve()
    ledger = Ledger(course / ".on_submit")
    inbound = exchange / COURSE_ID / "inbound"
    while True:
        pending = [sub for sub in inbound_submissions(inbound) if not ledger.read("done", sub)]
        while pending:
            batch = _batch(pending)
            attempts = {sub: ledger.start(sub) for sub in batch}
            records = grade_submissions(batch, course, exchange, source_root, sandbox, jobs)
            for sub in batch:
                record, attempt = records[sub], attempts[sub]
                submitted = sub.submitted_at()
                delay = (datetime.now(UTC) - submitted).total_seconds() if submitted else None
                ledger.finish(sub, {**record, "attempt": attempt, "delay_s": delay})
                score = (f"{record['total']:g}/{record['max_total']:g}" if record["status"] == "graded"
                         else record["status"])
                report(f"{sub.student} ({sub.timestamp}): {score}, feedback released"
                       + (f" {delay:.1f} s after submitting" if delay is not None else "")
                       + (f" (attempt {attempt})" if attempt > 1 else ""))
            pending = [sub for sub in pending if sub not in batch]
        if once:
            return
        time.sleep(poll)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.on_submit", description=__doc__.split("\n\n")[0])
    parser.add_argument("--course", type=Path, required=True, help="the course folder (formgrader's gradebook)")
    parser.add_argument("--exchange", type=Path, required=True, help="nbgrader's exchange root")
    parser.add_argument("--source", type=Path, help="master notebooks (default: <course>/source)")
    parser.add_argument("--poll", type=float, default=5.0, help="seconds between looks at the inbound folder")
    parser.add_argument("--once", action="store_true", help="grade what is waiting, then exit")
    parser.add_argument("--jobs", type=int, default=1,
                        help="notebooks graded at once when several submissions wait (default 1)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    if not (args.exchange / COURSE_ID).is_dir():
        print(f"error: {args.exchange / COURSE_ID} does not exist: release the assignment first "
              f"(or give the exchange root with --exchange)", file=sys.stderr)
        return 2
    try:
        watch(args.course, args.exchange, source_root=args.source or args.course / "source", poll=args.poll,
              once=args.once, jobs=args.jobs, report=lambda line: print(line, flush=True))
    except GradingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

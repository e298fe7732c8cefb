"""Command line of the grader: `python -m autograder.cli release|grade ...` (see README)."""
import argparse
import logging
import sys
from datetime import datetime, UTC
from pathlib import Path

from autograder.config import REPO_ROOT
from autograder.time_limits import CELL_FLOOR, FACTOR, NOTEBOOK_FLOOR, STARTUP
from autograder.distributed import cluster_slots
from autograder.gradebook import GradingError
from autograder.grading import grade_class
from autograder.release import generate_release
from autograder.reports import format_table, progress_line, write_csv, write_lms_csv, write_nbgrader_csv


def _due(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--due wants an ISO date such as 2026-12-01T23:59+00:00, got {text!r}") from None
    if value.tzinfo is not None:  # nbgrader stores naive UTC
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="workbook-grade", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    release = sub.add_parser("release", help="regenerate release/ from source/ with nbgrader")
    release.add_argument("--out", type=Path, default=REPO_ROOT / "release")
    release.add_argument("--grading-root", type=Path, default=REPO_ROOT / ".grading")
    grade = sub.add_parser("grade", help="grade a folder of submissions (one folder per student)")
    grade.add_argument("submissions", type=Path)
    grade.add_argument("--grading-root", type=Path, default=REPO_ROOT / ".grading")
    grade.add_argument("--csv", type=Path, help="per-cell grades (default: <grading-root>/grades.csv)")
    grade.add_argument("--no-feedback", action="store_true")
    grade.add_argument("--jobs", "-j", type=int, help="notebooks graded at once (sandboxes in parallel; `make grade` uses the "
                       "number of cores; default 1, or with --scheduler the cluster's sandbox slots)")
    grade.add_argument("--scheduler", help="Dask scheduler (tcp://HOST:8786): record the notebooks on its workers, "
                       "judge and write grades here (README: Grading on a cluster)")
    grade.add_argument("--due", type=_due, help="due date (ISO); timestamp.txt of a submission after it is late")
    grade.add_argument("--late-policy", choices=["none", "zero"], default="none",
                       help="none: late work is graded and flagged; zero: late work scores 0")
    grade.add_argument("--regrade", action="store_true", help="grade again what an earlier run already graded")
    grade.add_argument("--cell-timeout", type=int,
                       help=f"seconds one cell may run (default: {FACTOR:g} x the master's stored time, at least {CELL_FLOOR})")
    grade.add_argument("--notebook-timeout", type=int,
                       help=f"seconds one notebook may run (default: {FACTOR:g} x the master's stored time + {STARTUP}, "
                            f"at least {NOTEBOOK_FLOOR})")
    grade.add_argument("--memory-mb", type=int, help="memory of one kernel process in MiB (default 6144)")
    grade.add_argument("--source", type=Path, help="master notebooks folder (default: source/)")
    grade.add_argument("--run-experiments", action="store_true",
                       help="also run the cells the masters tag `experiment` (training and timing for the students "
                            "to look at; no grade depends on them, so they are left out by default)")
    grade.add_argument("--unsafe-no-sandbox", action="store_true",
                       help="grade without bubblewrap: kernels see the whole machine (named in the table and CSVs)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        if args.command == "release":
            generate_release(args.out, args.grading_root)
            print(f"release written to {args.out}")
            return 0
        sandbox = {k: v for k, v in (("cell_timeout", args.cell_timeout), ("notebook_timeout", args.notebook_timeout),
                                     ("memory_bytes", args.memory_mb and args.memory_mb * 2**20),
                                     ("run_experiments", args.run_experiments)) if v}
        jobs = 1 if args.jobs is None else args.jobs
        if args.scheduler:
            sandbox["scheduler"] = args.scheduler
            jobs = cluster_slots(args.scheduler) if args.jobs is None else args.jobs
        results = grade_class(args.submissions, args.grading_root, feedback=not args.no_feedback, jobs=jobs,
                              source_root=args.source, sandbox=sandbox, due=args.due, late_policy=args.late_policy,
                              regrade=args.regrade, unsafe_no_sandbox=args.unsafe_no_sandbox,
                              progress=lambda done, total, r: print(progress_line(done, total, r), file=sys.stderr, flush=True))
    except (GradingError, ConnectionError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    csv_path = args.csv or args.grading_root / "grades.csv"
    write_csv(results, csv_path)
    write_lms_csv(results, args.grading_root / "grades_lms.csv")
    write_nbgrader_csv(args.grading_root, args.grading_root / "grades_nbgrader.csv")
    print(format_table(results))
    print(f"\nper-cell grades: {csv_path}\nper-exercise grades (LMS import): {args.grading_root / 'grades_lms.csv'}"
          f"\nnbgrader export: {args.grading_root / 'grades_nbgrader.csv'}\nfeedback: {args.grading_root / 'feedback'}")
    return 0 if all(r.status == "graded" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())

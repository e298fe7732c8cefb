"""Command line of the grader: `python -m autograder.cli release|grade ...` (see README)."""
import argparse
import logging
import sys
from pathlib import Path

from autograder.config import REPO_ROOT
from autograder.grading import GradingError, format_table, generate_release, grade_class, write_csv


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="workbook-grade", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    release = sub.add_parser("release", help="regenerate release/ from source/ with nbgrader")
    release.add_argument("--out", type=Path, default=REPO_ROOT / "release")
    release.add_argument("--grading-root", type=Path, default=REPO_ROOT / ".grading")
    grade = sub.add_parser("grade", help="grade a folder of submissions (one folder per student)")
    grade.add_argument("submissions", type=Path)
    grade.add_argument("--grading-root", type=Path, default=REPO_ROOT / ".grading")
    grade.add_argument("--csv", type=Path, help="default: <grading-root>/grades.csv")
    grade.add_argument("--no-feedback", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        if args.command == "release":
            generate_release(args.out, args.grading_root)
            print(f"release written to {args.out}")
            return 0
        results = grade_class(args.submissions, args.grading_root, feedback=not args.no_feedback)
    except GradingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    csv_path = args.csv or args.grading_root / "grades.csv"
    write_csv(results, csv_path)
    print(format_table(results))
    print(f"\nper-cell grades: {csv_path}\nfeedback: {args.grading_root / 'feedback'}")
    return 0 if all(r.status == "graded" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())

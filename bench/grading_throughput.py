"""Throughput of class grading: stock `nbgrader autograde` (nbgrader's Execute, hidden tests in the
student's kernel, one submission after another) against this grader (sandboxed recording + trusted
judge) with `--jobs 2`, on the same class of golden submissions. Prints both times, seconds per
submission and the ratio (goal: >= 1.7x on 2 cores).

    .venv/bin/python bench/grading_throughput.py            # 12 submissions of the small test assignment
    .venv/bin/python bench/grading_throughput.py --full     # the golden class of the real assignment

Both sides grade without feedback and with the reduced training budget (WORKBOOK_FAST=1). The
machine's load average before the run is checked: above half the cores, other work was running and
the figures are marked DISTURBED.
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _machine_load import disturbed_note  # noqa: E402  (bench/, the script's own folder)

from nbgrader.converters.autograde import Autograde  # noqa: E402
from nbgrader.preprocessors import Execute  # noqa: E402

from autograder.config import ASSIGNMENT  # noqa: E402
from autograder.gradebook import make_api, prepare_gradebook  # noqa: E402
from autograder.grading import grade_class  # noqa: E402
from autograder.reports import format_table  # noqa: E402
from autograder.intake import copy_submission  # noqa: E402


def small_class(root: Path, n: int) -> tuple[Path, Path]:
    """`n` submissions of the one-notebook test assignment: reference, blank and wrong ones in turn."""
    from autograder.golden.attacks import target
    source = root / "source"
    target.write_source(source)
    api = make_api(root / "generate", release_root=root / "release", source_root=source)
    assert api.generate_assignment(ASSIGNMENT, force=True, create=True)["success"]
    import nbformat
    solutions = target.reference_solutions(source)
    variants = [solutions, {}, {**solutions, "channel_stats_solution": target.WRONG_STATS}]
    for i in range(n):
        nb = nbformat.read(root / "release" / ASSIGNMENT / f"{target.NOTEBOOK}.ipynb", as_version=4)
        for cell in nb.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id in variants[i % 3]:
                cell.source = variants[i % 3][grade_id]
        (root / "class" / f"student_{i:02d}").mkdir(parents=True)
        nbformat.write(nb, root / "class" / f"student_{i:02d}" / f"{target.NOTEBOOK}.ipynb")
    return root / "class", source


def full_class(root: Path) -> tuple[Path, None]:
    from autograder.golden.build import write_golden_class
    write_golden_class(root / "class")
    return root / "class", None


def plain_nbgrader(subs: Path, grading: Path, source: Path | None) -> float:
    """Stock nbgrader: its own Execute preprocessor and the rest of its default autograde list, serially."""
    api = prepare_gradebook(grading, source_root=source)
    api.config.Autograde.autograde_preprocessors = list(Autograde.class_traits()["autograde_preprocessors"].default())
    api.config.Execute.timeout = 600
    assert Execute in api.config.Autograde.autograde_preprocessors
    students = sorted(p for p in subs.iterdir() if p.is_dir())
    os.environ["WORKBOOK_FAST"] = "1"  # the training budget this grader's kernels get, for a like-for-like run
    start = time.perf_counter()
    for student in students:
        folder = student / ASSIGNMENT if (student / ASSIGNMENT).is_dir() else student
        copy_submission(folder, grading / "submitted" / student.name / ASSIGNMENT)
        result = api.autograde(ASSIGNMENT, student.name, force=True, create=True)
        if not result["success"]:
            print(f"plain nbgrader could not grade {student.name}", file=sys.stderr)
    return time.perf_counter() - start


def ours(subs: Path, grading: Path, source: Path | None, jobs: int) -> float:
    prepare_gradebook(grading, source_root=source)  # outside the timing, as for plain nbgrader
    start = time.perf_counter()
    results = grade_class(subs, grading, jobs=jobs, source_root=source, feedback=False)
    elapsed = time.perf_counter() - start
    print(format_table(results))
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="grade the golden class of the real assignment")
    parser.add_argument("-n", type=int, default=12, help="submissions in the small class (>= 10)")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="throughput-") as tmp:
        root = Path(tmp)
        subs, source = full_class(root) if args.full else small_class(root, args.n)
        n = sum(1 for p in subs.iterdir() if p.is_dir())
        load_before = os.getloadavg()[0]
        plain = plain_nbgrader(subs, root / "plain", source)
        mine = ours(subs, root / "ours", source, args.jobs)
    print(f"\n{n} submissions, {os.cpu_count()} cores")
    print(f"plain nbgrader autograde, serial : {plain:7.1f} s  ({plain / n:.1f} s per submission)")
    print(f"this grader, --jobs {args.jobs}           : {mine:7.1f} s  ({mine / n:.1f} s per submission)")
    print(f"ratio (plain / this grader)      : {plain / mine:.2f}x  (goal >= 1.7x on 2 cores)")
    if note := disturbed_note(load_before):
        print(note)
    return 0


if __name__ == "__main__":
    sys.exit(main())

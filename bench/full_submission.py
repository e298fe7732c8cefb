"""Seconds to grade one full submission (all seven notebooks, reference answers, with feedback):
serially and with --jobs 2, side by side in one run, against the goal of <= 60 s on 2 CPU cores.

    .venv/bin/python bench/full_submission.py            # --jobs 1 and 2
    .venv/bin/python bench/full_submission.py --jobs 2   # only one setting

With --jobs > 1 every notebook is its own autograde call, so the notebooks of one submission run in
parallel sandboxes (one torch thread each). Training cells run with the reduced budget
(WORKBOOK_FAST=1), as always when grading. The load average before the run is checked: above half
the cores, other work was running and the figures are marked DISTURBED.
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _machine_load import disturbed_note  # noqa: E402  (bench/, the script's own folder)

from autograder.gradebook import prepare_gradebook  # noqa: E402
from autograder.grading import grade_class  # noqa: E402
from autograder.golden.build import write_submission  # noqa: E402

GOAL_SECONDS = 60.0


def grade_once(jobs: int, root: Path) -> tuple[float, str]:
    grading = root / f"grading-{jobs}"
    prepare_gradebook(grading)  # outside the timing: done once per class
    start = time.perf_counter()
    [result] = grade_class(root / "class", grading, jobs=jobs, feedback=True)
    elapsed = time.perf_counter() - start
    return elapsed, f"{result.status}, {result.total:g} / {result.max_total:g} (autograded points; the rest by hand)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, action="append", help="settings to time (default: 1 and 2)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="full-submission-") as tmp:
        root = Path(tmp)
        write_submission(root / "class" / "reference", reference=True)
        load_before = os.getloadavg()[0]
        rows = [(jobs, *grade_once(jobs, root)) for jobs in args.jobs or [1, 2]]
    print(f"\none full submission (7 notebooks), {os.cpu_count()} cores")
    for jobs, seconds, status in rows:
        print(f"--jobs {jobs}: {seconds:6.1f} s   goal / time = {GOAL_SECONDS / seconds:.2f} (>= 1 meets the goal)   {status}")
    if note := disturbed_note(load_before):
        print(note)
    return 0


if __name__ == "__main__":
    sys.exit(main())

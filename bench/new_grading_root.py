"""How long a new grading root takes to get its gradebook ready (`prepare_gradebook`: the gradebook, then
the assignment's entries from source/): with the gradebook made by nbgrader (which runs alembic's command
line in a new Python to learn the schema's version) against copied from the cached empty one
(`autograder.gradebook.empty_gradebook`). Prints the median of each over a few new roots, and the ratio.

    .venv/bin/python bench/new_grading_root.py [-n 5]
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _machine_load import disturbed_note  # noqa: E402  (bench/, the script's own folder)

from autograder.config import COURSE_ID  # noqa: E402
from autograder.gradebook import empty_gradebook, prepare_gradebook  # noqa: E402


def seconds(root: Path, cache: Path) -> float:
    """`prepare_gradebook` on the new folder `root`, with the workbook cache at `cache`."""
    os.environ["WORKBOOK_CACHE"] = str(cache)
    start = time.perf_counter()
    prepare_gradebook(root)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5, help="new grading roots on each side")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        unwritable = tmp / "no-cache"
        unwritable.write_text("a file where the cache folder would be: nbgrader makes every gradebook")
        os.environ["WORKBOOK_CACHE"] = str(tmp / "cache")
        empty_gradebook(COURSE_ID)                      # made once, before timing
        made = [seconds(tmp / f"made-{i}", unwritable) for i in range(args.n)]
        copied = [seconds(tmp / f"copied-{i}", tmp / "cache") for i in range(args.n)]
    print(f"new grading root ready, median of {args.n}: gradebook made by nbgrader {statistics.median(made):.2f} s, "
          f"copied {statistics.median(copied):.2f} s, ratio {statistics.median(made) / statistics.median(copied):.2f}x")
    note = disturbed_note(load)
    if note:
        print(note)


if __name__ == "__main__":
    main()

"""Time of the similarity report (autograder/similarity.py) for a class of 100 submissions.

The class: every student answers every exercise with an implementation drawn (seeded) from the reference
and the mutant catalog (autograder/golden/mutants), and five of them are disguised copies of classmates
(autograder/golden/copies.disguise). Prints the time for 100 submissions and for 50, and the ratio of
the two times beside the ratio of the numbers of pairs (4950 / 1225 = 4.04): the comparison itself grows
with the pairs, the reading and fingerprinting with the students.

    python bench/similarity.py [-n 100]
"""
import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _machine_load import disturbed_note  # noqa: E402

from autograder.similarity import compare_class, format_ranking, write_html  # noqa: E402
from autograder.golden.build import write_submission  # noqa: E402
from autograder.golden.copies import as_fills, disguise, implementations, reference_cells  # noqa: E402

COPIES = 5


def write_class(dest: Path, n: int, seed: int = 0) -> dict[str, str]:
    """`n` students, the last COPIES of them disguised copies; returns {copy: original}."""
    rng = random.Random(seed)
    reference = reference_cells()
    choices = {where: [reference[where], *impls] for where, impls in implementations().items()}
    students = {}
    for i in range(n - COPIES):
        cells = dict(reference)
        cells.update({where: rng.choice(options) for where, options in choices.items()})
        students[f"student_{i:03d}"] = cells
    originals = rng.sample(sorted(students), COPIES)
    planted = {}
    for k, original in enumerate(originals):
        students[f"copier_{k}"] = {where: disguise(code) for where, code in students[original].items()}
        planted[f"copier_{k}"] = original
    for name, cells in students.items():
        write_submission(dest / name, as_fills(cells))
    return planted


def timed(folder: Path):
    start = time.perf_counter()
    report = compare_class(folder)
    return report, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=100, help="submissions in the large class (default 100)")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="similarity-bench-") as tmp:
        big, half = Path(tmp) / "big", Path(tmp) / "half"
        planted = write_class(big, args.n)
        write_class(half, args.n // 2, seed=1)
        report, seconds = timed(big)
        half_report, half_seconds = timed(half)
        write_html(report, Path(tmp) / "report.html")       # the page is part of the job
        copies = {frozenset(p) for p in planted.items()}
        ranks = [i for i, p in enumerate(report.pairs, 1) if frozenset((p.first, p.second)) in copies]
    print(format_ranking(report, 8))
    print(f"\nplanted copies ranked {ranks} of {len(report.pairs)} pairs")
    print(f"{len(report.students)} submissions ({len(report.pairs)} pairs): {seconds:.1f} s")
    print(f"{len(half_report.students)} submissions ({len(half_report.pairs)} pairs): {half_seconds:.1f} s")
    print(f"time ratio {seconds / half_seconds:.2f} for a pair ratio of {len(report.pairs) / len(half_report.pairs):.2f}")
    if note := disturbed_note(load):
        print(note)


if __name__ == "__main__":
    main()

"""Time limits that follow the honest cost: a multiple of the reference run's recorded times, with floors.

The master notebooks in source/ keep nbclient's timing of every cell (`metadata.execution`, recorded when
they were executed with the full training budget; grading runs the reduced one, so an honest submission
needs less). A submission's cell may take `FACTOR` times the master's cell, at least `CELL_FLOOR` seconds
(the hidden test cells take ~0 s in the master, where nothing is recorded, and call the student's
functions on many inputs when graded); its notebook `FACTOR` times the master's notebook plus the
kernel's start, at least `NOTEBOOK_FLOOR`. A cell the master does not have (added by the student, or
saved without cell ids) gets the notebook's longest cell limit. The notebook limit bounds them all: it
is the most a submission's notebook can cost. An instructor's --cell-timeout / --notebook-timeout
replaces these.

The cells the master tags `experiment` count only when grading runs them (`SandboxedExecute.run_experiments`):
by default they are left out, and so are their times.

`python -m autograder.time_limits` prints the limits of every notebook and the worst case per submission.
"""
import math
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import nbformat

from autograder.experiment_cells import is_experiment

__all__ = ["cell_seconds", "read_cells", "stored_run_seconds", "NotebookLimits", "reference_limits", "limits_from", "FACTOR", "CELL_FLOOR",
           "NOTEBOOK_FLOOR", "STARTUP"]

FACTOR = 3.0
CELL_FLOOR = 60
NOTEBOOK_FLOOR = 90
STARTUP = 30  # seconds for the kernel to start and the runner to save, on top of the cells


def cell_seconds(cell) -> float | None:
    """Seconds a cell took in its stored run (nbclient's `metadata.execution`), or None when not recorded."""
    timing = cell.get("metadata", {}).get("execution", {})
    try:
        start = datetime.fromisoformat(timing["iopub.execute_input"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(timing["shell.execute_reply"].replace("Z", "+00:00"))
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    return max(0.0, (end - start).total_seconds())


def read_cells(path: Path) -> list:
    """The cells of the notebook at `path`; none when it is missing or unreadable."""
    try:
        return nbformat.read(path, as_version=4).cells
    except Exception:
        return []


def stored_run_seconds(folder: Path, *, experiments: bool = True) -> dict[str, float]:
    """Seconds each notebook of `folder` took in its stored run (the sum of its cells' recorded times, the
    experiment cells' only if `experiments`); 0 for a notebook without them."""
    return {path.stem: sum(cell_seconds(c) or 0.0 for c in read_cells(path) if experiments or not is_experiment(c))
            for path in sorted(folder.glob("*.ipynb"))}


@dataclass(frozen=True)
class NotebookLimits:
    """The time limits of one notebook: per cell (by grade id or cell id), for unknown cells, in all."""
    cells: tuple[tuple[str, int], ...]
    default_cell: int
    notebook: int


def reference_limits(master: Path, factor: float = FACTOR, cell_floor: int = CELL_FLOOR,
                     notebook_floor: int = NOTEBOOK_FLOOR, *, experiments: bool = True) -> NotebookLimits:
    """Limits for submissions of the master notebook `master` (a missing or unreadable one: the floors).

    Args:
        master: the master notebook whose stored run is the honest cost.
        factor: how many times the honest cost a submission may take.
        cell_floor: the least seconds any cell gets.
        notebook_floor: the least seconds the notebook gets.
        experiments: whether the cells tagged `experiment` run (else they get no limit and add no time).
    """
    return limits_from(read_cells(master), factor, cell_floor, notebook_floor, experiments=experiments)


def limits_from(master_cells: list, factor: float = FACTOR, cell_floor: int = CELL_FLOOR,
                notebook_floor: int = NOTEBOOK_FLOOR, *, experiments: bool = True) -> NotebookLimits:
    """`reference_limits` of a master's cells already read (`read_cells`)."""
    cells, total = [], 0.0
    for cell in master_cells:
        seconds = cell_seconds(cell)
        if cell.cell_type != "code" or seconds is None or (is_experiment(cell) and not experiments):
            continue
        total += seconds
        key = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") or cell.get("id")
        if key:
            cells.append((key, max(cell_floor, math.ceil(factor * seconds))))
    notebook = max(notebook_floor, math.ceil(factor * total + STARTUP))
    longest = max([cell_floor] + [v for _, v in cells])
    # No cell may outlast its notebook.
    return NotebookLimits(tuple((k, min(v, notebook)) for k, v in cells), min(longest, notebook), notebook)


def main(argv=None) -> int:
    from autograder.config import ASSIGNMENT, REPO_ROOT
    folder = Path(argv[0] if argv else REPO_ROOT / "source" / ASSIGNMENT)
    graded, everything = stored_run_seconds(folder, experiments=False), stored_run_seconds(folder)
    worst = 0
    print("grading's default: the cells tagged experiment are left out (their stored time in brackets)")
    print(f"{'notebook':<28} {'honest (stored)':>24} {'notebook limit':>14} {'longest cell limit':>18}")
    for path in sorted(folder.glob("*.ipynb")):
        limits = reference_limits(path, experiments=False)
        both = f"{graded[path.stem]:.1f} s ({everything[path.stem] - graded[path.stem]:.1f} s)"
        print(f"{path.stem:<28} {both:>24} {limits.notebook:>12} s {limits.default_cell:>16} s")
        worst += limits.notebook
    print(f"worst case per submission: {worst} s ({worst / 60:.1f} min) serially; the notebooks of one submission "
          f"run in parallel with --jobs N")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

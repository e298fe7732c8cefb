"""The master's experiment cells: live training, timing and their figures, tagged `experiment`, for the student to
look at. No grade depends on them, so grading leaves them out (`SandboxedExecute.run_experiments` runs them), and
the time limits and the order of the notebooks count only the cells that run. Which cells are experiments is
always read from the master, never from a submission."""
from pathlib import Path

import nbformat

__all__ = ["EXPERIMENT_TAG", "is_experiment", "experiment_cells"]

EXPERIMENT_TAG = "experiment"


def is_experiment(cell) -> bool:
    """Whether a master's cell is tagged `experiment`."""
    return EXPERIMENT_TAG in cell.get("metadata", {}).get("tags", [])


def experiment_cells(master: Path) -> frozenset[str]:
    """Ids of the cells `master` tags `experiment` (none when it is missing or unreadable)."""
    try:
        cells = nbformat.read(master, as_version=4).cells
    except Exception:
        return frozenset()
    return frozenset(c.get("id") for c in cells if c.get("id") and is_experiment(c))

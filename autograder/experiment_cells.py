"""The master's experiment cells: live training, timing and their figures, tagged `experiment`, for the student to
look at. No grade depends on them, so grading leaves them out (`SandboxedExecute.run_experiments` runs them), and
the time limits and the order of the notebooks count only the cells that run. Which cells are experiments is
always read from the master, never from a submission."""
__all__ = ["EXPERIMENT_TAG", "is_experiment", "experiment_ids"]

EXPERIMENT_TAG = "experiment"


def is_experiment(cell) -> bool:
    """Whether a master's cell is tagged `experiment`."""
    return EXPERIMENT_TAG in cell.get("metadata", {}).get("tags", [])


def experiment_ids(master_cells) -> frozenset[str]:
    """Ids of the master's cells tagged `experiment` (the cells as `time_limits.read_cells` reads them)."""
    return frozenset(c.get("id") for c in master_cells if c.get("id") and is_experiment(c))

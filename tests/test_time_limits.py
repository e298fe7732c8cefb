"""Time limits derived from the reference run: a multiple of each cell's and notebook's recorded time, with floors."""
import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from autograder.config import ASSIGNMENT, REPO_ROOT
from autograder.experiment_cells import EXPERIMENT_TAG
from autograder.time_limits import STARTUP, reference_limits, stored_run_seconds


def _timed(source, seconds, grade_id=None):
    cell = new_code_cell(source)
    cell.metadata["execution"] = {"iopub.execute_input": "2026-01-01T00:00:00.000Z",
                                  "shell.execute_reply": f"2026-01-01T00:{int(seconds) // 60:02d}:{seconds % 60:06.3f}Z"}
    if grade_id:
        cell.metadata["nbgrader"] = {"grade_id": grade_id, "grade": True, "solution": False, "points": 1}
    return cell


def test_limits_follow_the_recorded_times_with_floors(tmp_path):
    training, test, quick = _timed("fit()", 100.0), _timed("record()", 0.0, "ex_values"), _timed("x = 1", 2.5)
    untimed = new_code_cell("y = 2")
    nb = new_notebook(cells=[new_markdown_cell("# title"), training, test, quick, untimed])
    nbformat.write(nb, tmp_path / "master.ipynb")
    limits = reference_limits(tmp_path / "master.ipynb", factor=2, cell_floor=30, notebook_floor=60)
    cells = dict(limits.cells)
    assert cells == {training.id: 200, "ex_values": 30, quick.id: 30}  # a graded cell is keyed by its grade id
    assert untimed.id not in cells
    assert limits.notebook == 2 * 102.5 + STARTUP
    assert limits.default_cell == 200  # a cell the master lacks gets the longest cell limit


def test_experiment_cells_count_only_when_they_run(tmp_path):
    experiment, quick = _timed("fit()", 100.0), _timed("x = 1", 2.5)
    experiment.metadata["tags"] = [EXPERIMENT_TAG]
    nbformat.write(new_notebook(cells=[experiment, quick]), tmp_path / "master.ipynb")
    left_out = reference_limits(tmp_path / "master.ipynb", factor=2, cell_floor=30, notebook_floor=10, experiments=False)
    assert dict(left_out.cells) == {quick.id: 30} and left_out.notebook == 2 * 2.5 + STARTUP
    run = reference_limits(tmp_path / "master.ipynb", factor=2, cell_floor=30, notebook_floor=10)
    assert dict(run.cells) == {experiment.id: 200, quick.id: 30} and run.notebook == 2 * 102.5 + STARTUP
    assert stored_run_seconds(tmp_path, experiments=False) == {"master": 2.5}
    assert stored_run_seconds(tmp_path) == {"master": 102.5}


def test_cells_never_outlast_the_notebook_and_floors_apply_without_times(tmp_path):
    nbformat.write(new_notebook(cells=[_timed("fit()", 50.0)]), tmp_path / "short.ipynb")
    limits = reference_limits(tmp_path / "short.ipynb", factor=3, cell_floor=10, notebook_floor=100)
    assert limits.notebook == 150 + STARTUP and dict(limits.cells) == {nbformat.read(tmp_path / "short.ipynb", 4).cells[0].id: 150}
    missing = reference_limits(tmp_path / "missing.ipynb", factor=3, cell_floor=10, notebook_floor=100)
    assert (missing.cells, missing.default_cell, missing.notebook) == ((), 10, 100)
    tight = reference_limits(tmp_path / "short.ipynb", factor=3, cell_floor=10, notebook_floor=20)
    assert max(s for _, s in tight.cells) <= tight.notebook


def test_every_master_notebook_has_recorded_times():
    """The limits of the real assignment come from recorded runs: each master notebook has them."""
    folder = REPO_ROOT / "source" / ASSIGNMENT
    seconds = stored_run_seconds(folder)
    assert len(seconds) == 7 and all(s > 5 for s in seconds.values()), seconds
    for path in folder.glob("*.ipynb"):
        limits = reference_limits(path)
        assert limits.notebook >= 2 * seconds[path.stem]

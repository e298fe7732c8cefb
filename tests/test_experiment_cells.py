"""Which cells grading leaves out: the master's `experiment` cells, unless `run_experiments` is set. Here the
sandbox is replaced by a recorder of the cells it is given; tests/test_grading_pipeline.py shows the same on
real kernels, with a student who moved the tags."""
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

import autograder.pipeline as pipeline
from autograder.experiment_cells import EXPERIMENT_TAG, experiment_ids
from autograder.pipeline import NOT_RUN, SandboxedExecute
from autograder.sandbox import SandboxResult
from autograder.time_limits import read_cells

SOLUTION = {"solution": True, "grade": False, "locked": False, "grade_id": "answer", "schema_version": 3}


def _notebook(tagged: bool):
    tags = {"tags": [EXPERIMENT_TAG]} if tagged else {}
    return new_notebook(cells=[new_code_cell("x = 1", id="plain"),
                               new_code_cell("train()", id="trains", metadata=tags),
                               new_code_cell("answer = 2", id="answer", metadata={**tags, "nbgrader": SOLUTION})])


@pytest.fixture
def master(tmp_path):
    nbformat.write(_notebook(tagged=True), tmp_path / "nb.ipynb")
    return tmp_path


def _grade(master, tmp_path, monkeypatch, **settings):
    """Run the preprocessor on an untagged submission; the ids of the cells the sandbox got, and the result."""
    given = []

    def record(nb, workdir, **_):
        given.extend(c.id for c in nb.cells)
        ran = nbformat.from_dict(nb)
        for cell in ran.cells:
            cell.outputs, cell.execution_count = [new_output("stream", name="stdout", text="ran\n")], 1
        return SandboxResult(ran, "ok", "", isolated=True)

    monkeypatch.setattr(pipeline, "run_sandboxed", record)
    preprocessor = SandboxedExecute(reference_folder=str(master), work_root=str(tmp_path / "work"), **settings)
    nb, _ = preprocessor.preprocess(_notebook(tagged=False), {"nbgrader": {"student": "s", "notebook": "nb"}})
    return given, {c.id: [o.get("text") for o in c.outputs] for c in nb.cells}


def test_the_master_names_the_experiment_cells(master, tmp_path):
    assert experiment_ids(read_cells(master / "nb.ipynb")) == {"trains", "answer"}
    assert experiment_ids(read_cells(tmp_path / "missing.ipynb")) == frozenset()


def test_experiments_are_left_out_by_default_but_never_a_solution(master, tmp_path, monkeypatch):
    given, outputs = _grade(master, tmp_path, monkeypatch)
    assert given == ["plain", "answer"]
    assert outputs == {"plain": ["ran\n"], "trains": [NOT_RUN], "answer": ["ran\n"]}


def test_run_experiments_runs_every_cell(master, tmp_path, monkeypatch):
    given, outputs = _grade(master, tmp_path, monkeypatch, run_experiments=True)
    assert given == ["plain", "trains", "answer"]
    assert NOT_RUN not in sum(outputs.values(), [])

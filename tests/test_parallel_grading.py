"""Grading with --jobs > 1 runs one nbgrader autograde call per notebook, so the notebooks of one
submission spread over the jobs. The grades must be exactly those of serial grading, a missing
notebook still scores 0, and a regrade leaves no autograded notebook or feedback of an earlier run.
Uses a two-notebook copy of the attack corpus's small assignment, so each notebook grades in seconds."""
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder.config import ASSIGNMENT, REPO_ROOT
from autograder.gradebook import make_api
from autograder.grading import grade_class
from autograder.time_limits import stored_run_seconds
from autograder.golden.attacks import target
from autograder.golden.attacks.target import NOTEBOOK, WRONG_STATS

pytestmark = pytest.mark.slow
SANDBOX = {"cell_timeout": 20, "notebook_timeout": 120}
SECOND = "00_attack_target_copy"


@pytest.fixture(scope="module")
def assignment(tmp_path_factory):
    root = tmp_path_factory.mktemp("parallel")
    folder = target.write_source(root / "source")
    shutil.copy(folder / f"{NOTEBOOK}.ipynb", folder / f"{SECOND}.ipynb")
    api = make_api(root / "generate", release_root=root / "release", source_root=root / "source")
    assert api.generate_assignment(ASSIGNMENT, force=True, create=True)["success"]
    return root


def _write(assignment: Path, folder: Path, notebooks: dict[str, dict[str, str]]) -> None:
    """One student: for each notebook stem, the reference answers with `fills` replacing some."""
    solutions = target.reference_solutions(assignment / "source")
    folder.mkdir(parents=True, exist_ok=True)
    for stem, fills in notebooks.items():
        nb = nbformat.read(assignment / "release" / ASSIGNMENT / f"{stem}.ipynb", as_version=4)
        for cell in nb.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id in {**solutions, **fills}:
                cell.source = {**solutions, **fills}[grade_id]
        nbformat.write(nb, folder / f"{stem}.ipynb")


@pytest.fixture(scope="module")
def graded(assignment):
    subs = assignment / "class"
    _write(assignment, subs / "full", {NOTEBOOK: {}, SECOND: {}})
    _write(assignment, subs / "half", {NOTEBOOK: {}, SECOND: {"channel_stats_solution": WRONG_STATS}})
    _write(assignment, subs / "only_first", {NOTEBOOK: {}})
    runs = {}
    for jobs in (1, 2):
        grading = assignment / f"grading-{jobs}"
        runs[jobs] = (grading, {r.student: r for r in grade_class(subs, grading, jobs=jobs, sandbox=SANDBOX,
                                                                  source_root=assignment / "source")})
    return subs, runs


def test_parallel_grades_equal_serial_grades(graded):
    _, runs = graded
    serial, parallel = runs[1][1], runs[2][1]
    assert {s: (r.status, r.total, r.scores) for s, r in parallel.items()} == \
           {s: (r.status, r.total, r.scores) for s, r in serial.items()}
    assert [parallel[s].total for s in ("full", "half", "only_first")] == [12, 9, 6]
    assert parallel["half"].scores[f"{SECOND}:channel_stats_values"] == 0
    assert any(f"missing (0 points): {SECOND}.ipynb" in n for n in parallel["only_first"].notes)


def test_every_graded_notebook_has_its_feedback(graded):
    _, runs = graded
    for grading, _ in runs.values():
        for student, stems in (("full", {NOTEBOOK, SECOND}), ("only_first", {NOTEBOOK})):
            feedback = {p.stem for p in (grading / "feedback" / student / ASSIGNMENT).glob("*.html")}
            assert feedback == stems, (grading.name, student, feedback)


def test_regrade_leaves_nothing_of_a_notebook_removed_since(assignment, graded):
    subs, runs = graded
    grading, _ = runs[2]
    changed = assignment / "class-changed"
    shutil.copytree(subs, changed)
    (changed / "full" / f"{SECOND}.ipynb").unlink()
    results = {r.student: r for r in grade_class(changed, grading, jobs=2, sandbox=SANDBOX,
                                                 source_root=assignment / "source")}
    assert results["full"].total == 6 and results["full"].scores[f"{SECOND}:channel_stats_values"] == 0
    for stage, suffix in (("autograded", ".ipynb"), ("feedback", ".html")):
        left = {p.name for p in (grading / stage / "full" / ASSIGNMENT).glob(f"*{suffix}")}
        assert left == {f"{NOTEBOOK}{suffix}"}, (stage, left)
    assert "kept from an earlier run" in " ".join(results["half"].notes)   # unchanged: not graded again


def test_stored_run_seconds_reads_the_cells_execution_times(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1"), nbformat.v4.new_code_cell("2"),
                                         nbformat.v4.new_markdown_cell("text")])
    nb.cells[0].metadata["execution"] = {"iopub.execute_input": "2026-11-29T10:00:00.000000Z",
                                         "shell.execute_reply": "2026-11-29T10:00:02.500000Z"}
    nb.cells[1].metadata["execution"] = {"iopub.execute_input": "2026-11-29T10:00:03Z"}   # no reply: not counted
    nbformat.write(nb, tmp_path / "timed.ipynb")
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "untimed.ipynb")
    (tmp_path / "broken.ipynb").write_text("not JSON")
    assert stored_run_seconds(tmp_path) == {"broken": 0.0, "timed": 2.5, "untimed": 0.0}


def test_workers_forked_after_the_parent_ran_torch_do_not_hang():
    """A worker forked after an OpenMP torch op in the parent runs torch ops (libgomp hangs without the fix)."""
    # Two torch threads in the parent, whatever OMP_NUM_THREADS the test run sets: one thread never starts the pool.
    code = ("import torch\nfrom autograder.grading import worker_pool\n"
            "torch.set_num_threads(2)\ntorch.randn(1000, 1000).log_softmax(-1)\n"
            "with worker_pool(2) as pool:\n"
            "    print(list(pool.map(torch.Tensor.sum, [torch.randn(1000, 1000).log_softmax(-1)] * 2)))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.count("tensor(") == 2, done.stderr[-2000:]

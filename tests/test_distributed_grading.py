"""Grading on a real Dask cluster on 127.0.0.1: a `dask scheduler` and `dask worker` processes started
here, the grader's CLI as the coordinator. Faults are real: a worker killed with SIGKILL mid-class, a
worker that stops answering (SIGSTOP) until the scheduler drops it, the coordinator killed and run
again. Every time the gradebook must hold each submission once, with the scores of local grading.
Uses the one-notebook test assignment of the attack corpus, so each notebook records in seconds."""
import csv
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder.cli import main
from autograder.config import ASSIGNMENT
from autograder.distributed import RESOURCE, SandboxRefused, bounded, cluster_slots, record_notebook
from autograder.gradebook import make_api, read_scores
from autograder.grading import grade_class
from autograder.local_cluster import Cluster, signal_group, start, wait_for
from autograder.golden.attacks import target

pytestmark = [pytest.mark.slow, pytest.mark.e2e]
SANDBOX = {"cell_timeout": 30, "notebook_timeout": 120}
# A few seconds of sleep in a correct solution: tasks stay on their workers long enough to be hit.
SLOW = "import time\ntime.sleep(3)\n"
REFERENCE = "<the reference solution>"
# Each student: solution cells replaced (None: the blank release notebook), REFERENCE standing for the reference.
STUDENTS = {"blank": None, "full": {}, "slow_full": {"normalize_solution": SLOW + REFERENCE},
            "slow_wrong": {"channel_stats_solution": SLOW + target.WRONG_STATS}}
SCHEDULER_ENV = {"DASK_DISTRIBUTED__SCHEDULER__WORKER_TTL": "4s",       # a silent worker is dropped after 4 s
                 "DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION": "1.0"}  # no task waits queued on a busy worker


def _write_class(assignment: Path, dest: Path) -> Path:
    solutions = target.reference_solutions(assignment / "source")
    for student, fills in STUDENTS.items():
        nb = nbformat.read(assignment / "release" / ASSIGNMENT / f"{target.NOTEBOOK}.ipynb", as_version=4)
        for cell in nb.cells if fills is not None else []:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id in solutions:
                cell.source = fills.get(grade_id, REFERENCE).replace(REFERENCE, solutions[grade_id])
        (dest / student).mkdir(parents=True)
        nbformat.write(nb, dest / student / f"{target.NOTEBOOK}.ipynb")
    return dest


@pytest.fixture(scope="module")
def assignment(tmp_path_factory):
    root = tmp_path_factory.mktemp("distributed")
    target.write_source(root / "source")
    api = make_api(root / "generate", release_root=root / "release", source_root=root / "source")
    assert api.generate_assignment(ASSIGNMENT, force=True, create=True)["success"]
    _write_class(root, root / "class")
    return root


@pytest.fixture(scope="module")
def cluster(assignment):
    cluster = Cluster(assignment, SCHEDULER_ENV)
    try:
        for name in ("A", "B"):
            cluster.start_worker(name)
        # Without bubblewrap on its PATH this worker could only grade unsandboxed.
        cluster.start_worker("degraded", env={"PATH": "/nonexistent"})
        cluster.wait_for_workers("A", "B", "degraded")
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def local(assignment):
    """The class graded on this machine, without Dask: what the cluster must reproduce."""
    root = assignment / "grading-local"
    results = grade_class(assignment / "class", root, jobs=2, sandbox=SANDBOX, source_root=assignment / "source")
    assert [r.student for r in results if r.status != "graded"] == []
    return {student: read_scores(root, student) for student in STUDENTS}


def _grade(assignment: Path, cluster: Cluster, root: Path, name: str) -> subprocess.Popen:
    return start([sys.executable, "-m", "autograder.cli", "grade", str(assignment / "class"), "--grading-root", str(root),
                   "--source", str(assignment / "source"), "--scheduler", cluster.address, "--jobs", "2",
                   "--cell-timeout", str(SANDBOX["cell_timeout"]), "--notebook-timeout", str(SANDBOX["notebook_timeout"])],
                  assignment / f"{name}.log")


def _gradebook_rows(root: Path) -> tuple[int, int, int]:
    """Submissions, submitted notebooks and grades in the gradebook: each exactly once per student."""
    with sqlite3.connect(root / "gradebook.db") as db:
        return tuple(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                     for table in ("submitted_assignment", "submitted_notebook", "grade"))


def _check_equal_to_local(root: Path, local: dict) -> None:
    assert {s: read_scores(root, s) for s in STUDENTS} == local
    cells = len(next(iter(local.values()))[0])
    assert _gradebook_rows(root) == (len(STUDENTS), len(STUDENTS), len(STUDENTS) * cells)
    with (root / "grades.csv").open() as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    assert {s: (row["status"], float(row["total"])) for s, row in rows.items()} == \
           {s: ("graded", total) for s, (_, total, _) in local.items()}


def test_the_local_grades_are_those_of_the_assignment(local):
    """The reference run itself is right: a full solution 6 points, a wrong channel_stats loses 3."""
    assert {s: total for s, (_, total, _) in local.items()} == \
           {"blank": 0, "full": 6, "slow_full": 6, "slow_wrong": 3}


def test_workers_killed_and_disconnected_mid_class_lose_and_double_nothing(assignment, cluster, local):
    root = assignment / "grading-faults"
    coordinator = _grade(assignment, cluster, root, "coordinator-faults")
    try:
        wait_for(lambda: cluster.busy("A"), "a task on worker A")
        signal_group(cluster.procs["A"], signal.SIGKILL)            # the machine is gone: nanny, worker, sandbox
        cluster.procs["A"].wait()
        cluster.start_worker("C")                              # a replacement joins mid-class
        wait_for(lambda: cluster.busy("B"), "a task on worker B")
        signal_group(cluster.procs["B"], signal.SIGSTOP)            # B stops answering: no heartbeat, no result
        wait_for(lambda: "B" not in cluster.workers(), "the scheduler to drop the silent worker B")
        signal_group(cluster.procs["B"], signal.SIGCONT)            # it comes back after its task went elsewhere
        assert coordinator.wait(timeout=240) == 0, (assignment / "coordinator-faults.log").read_text()[-3000:]
    finally:
        signal_group(coordinator, signal.SIGKILL)
    _check_equal_to_local(root, local)


def test_a_killed_coordinator_run_again_grades_everyone_exactly_once(assignment, cluster, local):
    cluster.wait_for_workers("C")
    root = assignment / "grading-restart"
    first = _grade(assignment, cluster, root, "coordinator-killed")
    try:
        wait_for(lambda: f" 1/{len(STUDENTS)} " in (assignment / "coordinator-killed.log").read_text(), "the first graded student")
    finally:
        signal_group(first, signal.SIGKILL)                         # the coordinator and its grading processes
        first.wait()
    again = _grade(assignment, cluster, root, "coordinator-again")
    assert again.wait(timeout=240) == 0, (assignment / "coordinator-again.log").read_text()[-3000:]
    table = (assignment / "coordinator-again.log").read_text()
    kept = table.count("kept from an earlier run")
    assert 1 <= kept < len(STUDENTS), table[-3000:]
    _check_equal_to_local(root, local)


def test_a_worker_with_a_degraded_sandbox_gets_no_grading_work_and_refuses_it(assignment, cluster):
    assert RESOURCE not in cluster.workers()["degraded"]["resources"]
    assert "refuses grading work, its sandbox is degraded: bubblewrap (bwrap) cannot run here" in \
        (assignment / "degraded.log").read_text()
    # Sent to it by hand, the task itself refuses before running anything.
    address = next(a for a, w in cluster.client.scheduler_info(n_workers=-1)["workers"].items() if w["name"] == "degraded")
    task = {"notebook": nbformat.writes(nbformat.v4.new_notebook()), "inputs": {}, "env": {}, "limits": {}}
    future = cluster.client.submit(record_notebook, task, workers=[address], allow_other_workers=False, pure=False)
    with pytest.raises(SandboxRefused, match="refuses grading work"):
        future.result(timeout=60)
    # The cluster's grading capacity counts only the sandboxes of healthy workers.
    assert cluster_slots(cluster.address) == sum(1 for w in cluster.workers().values() if RESOURCE in w["resources"])


def test_an_unreachable_scheduler_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "class").mkdir()
    code = main(["grade", str(tmp_path / "class"), "--grading-root", str(tmp_path / "g"), "--scheduler", "tcp://127.0.0.1:9"])
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(
        "error: cannot reach the Dask scheduler at tcp://127.0.0.1:9")


def test_a_task_returns_only_plain_recordings_and_never_more_than_the_bound():
    """`record_notebook` called directly (as a worker would): files the kernel names oddly stay behind,
    and a reply over the size bound comes back as a failed run without notebook or recordings."""
    writes = ("import os, pathlib\nout = pathlib.Path(os.environ['WORKBOOK_GRADING_DIR']) / 'outputs'\n"
              "out.mkdir(parents=True, exist_ok=True)\n(out / 'kept.pt').write_bytes(b'x' * 10)\n"
              "(out / 'odd name.pt').write_bytes(b'y')\n(out / 'notes.txt').write_bytes(b'z')\nprint('written')")
    task = {"notebook": nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(writes)])),
            "inputs": {}, "env": {}, "limits": SANDBOX}
    reply = record_notebook(task)
    assert (reply["status"], reply["recordings"]) == ("ok", {"kept.pt": b"x" * 10}), reply["message"]
    [output] = nbformat.reads(reply["notebook"], as_version=4).cells[0].outputs
    assert output.get("text") == "written\n"      # the executed notebook comes back with its outputs
    size = len(reply["notebook"]) + 10
    assert bounded(reply, limit=size) == reply
    over = bounded(reply, limit=size - 1)
    assert (over["status"], over["notebook"], over["recordings"]) == ("crashed", None, {})
    assert f"total {size} bytes, more than the {size - 1}" in over["message"]

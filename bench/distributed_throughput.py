"""Throughput of grading on Dask distributed against the local pool, on one machine, one run each.

The same class of the small one-notebook test assignment is graded three times: by the local pool
(`--jobs 2`, no scheduler), then through a `dask scheduler` on 127.0.0.1 with one and with two
`dask worker` processes (one thread each; the coordinator keeps as many notebooks in flight as there
are worker threads). Prints the seconds of each run, the ratios, and the per-notebook costs that the
README's cost model starts from: worker-seconds per notebook (the tasks' compute time, from Dask's
task stream), coordinator CPU-seconds per notebook (this process and its grading processes: nbgrader,
judging, gradebook writes; the sandboxes run on the workers), and gradebook rows written per notebook.

    .venv/bin/python bench/distributed_throughput.py          # 12 submissions of the small assignment
    .venv/bin/python bench/distributed_throughput.py --full   # one full submission of the real assignment

On one machine the workers share its cores with the coordinator: the ratios measure the overhead
of going through Dask, not the speed-up of more machines. Training runs with the reduced budget
(WORKBOOK_FAST=1). A load average above half the cores before the run marks the figures DISTURBED.
"""
import argparse
import os
import resource
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _machine_load import disturbed_note  # noqa: E402  (bench/, the script's own folder)
from grading_throughput import small_class  # noqa: E402

from distributed import get_task_stream  # noqa: E402

from autograder.config import ASSIGNMENT, REPO_ROOT  # noqa: E402
from autograder.gradebook import prepare_gradebook  # noqa: E402
from autograder.grading import grade_class  # noqa: E402
from autograder.time_limits import stored_run_seconds  # noqa: E402
from autograder.local_cluster import Cluster  # noqa: E402
from autograder.golden.build import write_submission  # noqa: E402


def _cpu_seconds() -> float:
    """CPU time of this process and of its children that have ended (the grading pool's processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _rows_written(grading: Path) -> int:
    """Rows of the submitted work in the gradebook: submissions, notebooks, grades and comments."""
    with sqlite3.connect(grading / "gradebook.db") as db:
        return sum(db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                   for t in ("submitted_assignment", "submitted_notebook", "grade", "comment"))


def grade(subs: Path, grading: Path, source: Path | None, jobs: int, scheduler: str | None = None) -> dict:
    """Grade the class once; wall seconds, coordinator CPU-seconds and the gradebook rows it wrote."""
    sandbox = {"scheduler": scheduler} if scheduler else {}
    prepare_gradebook(grading, source_root=source)  # outside the timing, as in grading_throughput.py
    cpu, start = _cpu_seconds(), time.perf_counter()
    results = grade_class(subs, grading, jobs=jobs, source_root=source, feedback=False, sandbox=sandbox)
    wall = time.perf_counter() - start
    failed = [r.student for r in results if r.status != "graded"]
    if failed:
        raise SystemExit(f"not graded: {failed}")
    return {"wall": wall, "cpu": _cpu_seconds() - cpu, "rows": _rows_written(grading),
            "totals": {r.student: r.total for r in results}}


def on_cluster(root: Path, subs: Path, source: Path | None, workers: int) -> dict:
    """Grade through a fresh scheduler with `workers` one-thread workers; adds the tasks' worker-seconds."""
    cluster = Cluster(root / f"cluster-{workers}")
    try:
        names = [f"w{i}" for i in range(workers)]
        for name in names:
            cluster.start_worker(name)
        cluster.wait_for_workers(*names)
        with get_task_stream(client=cluster.client) as stream:
            run = grade(subs, root / f"dask-{workers}", source, workers, cluster.address)
        run["worker_seconds"] = sum(s["stop"] - s["start"] for task in stream.data for s in task["startstops"]
                                    if s["action"] == "compute")
        run["tasks"] = len(stream.data)
        return run
    finally:
        cluster.close()


CLASSES = (1_000, 10_000)
SLOTS = (10, 50, 100, 500)


def cost_model(worker_s: float, coordinator_s: float, rows: float, label: str) -> list[str]:
    """Worker-hours, wall time on N sandbox slots, and the coordinator's share, for 1,000 and 10,000 submissions.

    Args:
        worker_s: worker-seconds of one submission (its notebooks' recordings).
        coordinator_s: coordinator seconds of one submission, all of it under the gradebook lock, so
            the coordinator grades at most 1 / coordinator_s submissions per second whatever N is.
        rows: gradebook rows one submission writes.
        label: which budget the worker-seconds come from.
    """
    lines = [f"cost model, {label}: {worker_s:.0f} worker-s and {coordinator_s:.2f} coordinator-s per submission, "
             f"{rows:.0f} gradebook rows; the coordinator caps the rate at {1 / coordinator_s:.2f} submissions/s"]
    for students in CLASSES:
        for slots in SLOTS:
            wall = max(students * worker_s / slots, students * coordinator_s)
            bound = "coordinator-bound" if students * coordinator_s >= students * worker_s / slots else "worker-bound"
            lines.append(f"  {students:6d} submissions, {slots:3d} slots: {students * worker_s / 3600:7.1f} worker-h, "
                         f"wall {wall / 3600:6.2f} h ({bound}), coordinator busy {students * coordinator_s / wall:4.0%}, "
                         f"{students * rows / wall:5.1f} gradebook rows/s")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=12, help="submissions in the small assignment's class")
    parser.add_argument("--full", action="store_true", help="one full submission (7 notebooks) of the real assignment")
    args = parser.parse_args()
    os.environ["WORKBOOK_FAST"] = "1"
    root = Path(tempfile.mkdtemp(prefix="distributed-throughput-"))
    try:
        (root / "cluster-1").mkdir()
        (root / "cluster-2").mkdir()
        if args.full:
            subs, source = root / "class", None
            write_submission(subs / "reference", reference=True)
        else:
            subs, source = small_class(root, args.n)
        load_before = os.getloadavg()[0]
        local = grade(subs, root / "local", source, jobs=2)
        one = on_cluster(root, subs, source, 1)
        two = on_cluster(root, subs, source, 2)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if not local["totals"] == one["totals"] == two["totals"]:
        raise SystemExit("the cluster's grades differ from the local pool's")
    n = one["tasks"]  # notebooks graded
    what = "one full submission (7 notebooks)" if args.full else f"{n} submissions of the one-notebook test assignment"
    print(f"{what}, {os.cpu_count()} cores, one run each")
    print(f"local pool, --jobs 2         : {local['wall']:6.1f} s  ({local['wall'] / n:.2f} s per notebook)")
    for label, run in (("Dask, 1 worker x 1 thread", one), ("Dask, 2 workers x 1 thread", two)):
        print(f"{label:29s}: {run['wall']:6.1f} s  ({run['wall'] / n:.2f} s per notebook)")
    print(f"throughput ratio, Dask 1 worker / local pool  : {local['wall'] / one['wall']:.2f}x")
    print(f"throughput ratio, Dask 2 workers / local pool : {local['wall'] / two['wall']:.2f}x")
    print(f"throughput ratio, Dask 2 workers / 1 worker   : {one['wall'] / two['wall']:.2f}x")
    for label, run in (("1 worker", one), ("2 workers", two)):
        print(f"per notebook, {label:9s}: worker {run['worker_seconds'] / run['tasks']:.2f} s ({run['tasks']} tasks), "
              f"coordinator CPU {run['cpu'] / n:.2f} s, gradebook rows {run['rows'] / n:.1f}")
    if args.full:
        stored = sum(stored_run_seconds(REPO_ROOT / "source" / ASSIGNMENT, experiments=False).values())
        per_submission = (two["cpu"], two["rows"])
        for line in (cost_model(two["worker_seconds"], *per_submission, "reduced training budget (grading default)")
                     + cost_model(stored, *per_submission, "full training budget (the stored run times of the cells grading runs)")):
            print(line)
    if note := disturbed_note(load_before):
        print(note)
    return 0


if __name__ == "__main__":
    sys.exit(main())

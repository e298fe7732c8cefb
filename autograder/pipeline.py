"""nbgrader preprocessor that replaces `Execute`: sandboxed recording, then a trusted verdict.

`Autograde.autograde_preprocessors` starts with nbgrader's `Execute`, which runs hidden tests in the
student's own kernel (where `assert` and every helper can be patched). `SandboxedExecute` takes its
place: it writes each check's inputs, runs the notebook in `autograder.sandbox`, copies the
student's outputs into the trusted notebook, and then replaces the outputs of every autograded test
cell with the judge's verdict, which nbgrader's `SaveAutoGrades` turns into points as usual.

The cells the master tags `experiment` (`autograder.experiment_cells`) are left out of the run unless
`run_experiments` is set: no grade depends on them, a run under the reduced budget shows nothing of their
effect, and they were most of a notebook's grading time.
"""
import contextlib
import shutil
import uuid
from pathlib import Path

import nbformat
from nbformat import NotebookNode
from nbgrader import utils
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Bool, Float, Instance, Integer, List, Unicode

from autograder import time_limits
from autograder.rubric import REGISTRY, Verdict, seed_for
from autograder.distributed import remote_runner
from autograder.experiment_cells import experiment_ids
from autograder.gradebook_lock import GradebookLock
from autograder.judge import NO_RECORDING, judge, write_inputs
from autograder.sandbox import Limits, run_sandboxed
from workbook.grading_folder import GRADING_FOLDER
from workbook.variants import STUDENT_ENV

__all__ = ["SandboxedExecute", "verdict_outputs", "NOT_RUN"]

NOT_RUN = ("Not run when grading: this cell is an experiment for you to look at, and no grade depends on it. "
           "Your own run's outputs are in the notebook you submitted.\n")

def verdict_outputs(verdict: Verdict) -> list[NotebookNode]:
    """The outputs a graded cell shows: a line of text when passed, an error naming the reason when not.

    The error's text (what feedback shows) is the reason alone, in the student's terms; the error's
    name, which no view shows, keeps the grader's word for it.
    """
    if verdict.passed:
        return [NotebookNode(output_type="stream", name="stdout", text=f"✔ {verdict.message}\n")]
    return [NotebookNode(output_type="error", ename="GradingFailure", evalue=verdict.message,
                         traceback=[f"✘ {verdict.message}"])]


def _error_of(cell: NotebookNode) -> str | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            evalue = str(output.get("evalue") or "")[:200]
            return f"{output.get('ename')}: {evalue}" if evalue else str(output.get("ename"))
    return None


def _no_recording_message(nb: NotebookNode, cell: NotebookNode) -> str:
    """Why a check got nothing to judge, starting with what the student's own code raised: in this cell
    first (a failing visible test, a timeout or memory error), then the last error in the cells before it."""
    index = next(i for i, c in enumerate(nb.cells) if c is cell)
    reasons = []
    error = _error_of(cell)
    if error:
        reasons.append(f"this cell raised {error}")
    earlier = [(i, _error_of(c)) for i, c in enumerate(nb.cells[:index])
               if c.cell_type == "code" and not utils.is_grade(c) and _error_of(c)]
    if earlier:
        i, first = earlier[-1]
        name = nb.cells[i].get("metadata", {}).get("nbgrader", {}).get("grade_id") or f"number {i}"
        reasons.append(f"{'before it, ' if reasons else ''}cell {name} raised {first}")
    if not reasons:
        reasons.append("this cell stopped before its end (a timeout, a crashed kernel, or a function that is not defined)")
    text = "; ".join(reasons)
    return f"{text[0].upper()}{text[1:]}. So the grader received nothing from this cell to check"


def _left_out(cell: NotebookNode, ids: frozenset[str]) -> bool:
    """Whether the run leaves `cell` out: a code cell of `ids` (a graded or solution cell never is)."""
    return cell.cell_type == "code" and cell.get("id") in ids and not utils.is_grade(cell) and not utils.is_solution(cell)


def autograded_test_cells(nb: NotebookNode) -> list[NotebookNode]:
    return [c for c in nb.cells if c.cell_type == "code" and utils.is_grade(c) and not utils.is_solution(c)]


class SandboxedExecute(NbGraderPreprocessor):
    """Record in a sandboxed kernel, judge here."""

    cell_timeout = Integer(0, help="Seconds one cell may run (0: from the reference run, see autograder.time_limits).").tag(config=True)
    notebook_timeout = Integer(0, help="Seconds one notebook may run (0: from the reference run).").tag(config=True)
    reference_folder = Unicode(help="The master notebooks, whose stored run times set the time limits.").tag(config=True)
    time_factor = Float(time_limits.FACTOR, help="Times the reference run's time a cell or notebook may take.").tag(config=True)
    cell_floor = Integer(time_limits.CELL_FLOOR, help="Least seconds of a cell under derived limits.").tag(config=True)
    notebook_floor = Integer(time_limits.NOTEBOOK_FLOOR, help="Least seconds of a notebook under derived limits.").tag(config=True)
    seed_salt = Unicode("sizing-and-tta", help="Mixed into each submission's input seeds.").tag(config=True)
    work_root = Unicode(help="Folder for the sandboxes' working folders.").tag(config=True)
    hide = List(Unicode(), help="Folders the kernel must not see (gradebook, submissions).").tag(config=True)
    fast = Bool(True, help="Run training cells with the reduced budget (WORKBOOK_FAST=1).").tag(config=True)
    run_experiments = Bool(False, help="Also run the cells the master tags `experiment` (left out by default: "
                           "no grade depends on them).").tag(config=True)
    keep_workdirs = Bool(False, help="Keep sandbox folders for debugging.").tag(config=True)
    device = Unicode("cpu", help="Device the recorder moves inputs to.").tag(config=True)
    gpu = Unicode("", help="CUDA_VISIBLE_DEVICES of the kernel ('' keeps the grader's).").tag(config=True)
    memory_bytes = Integer(Limits.memory_bytes, help="Data memory of one kernel process.").tag(config=True)
    max_processes = Integer(Limits.max_processes, help="Processes and threads of one run.").tag(config=True)
    output_bytes = Integer(Limits.output_bytes, help="Outputs kept per cell.").tag(config=True)
    disk_bytes = Integer(Limits.disk_bytes, help="Size of the kernel's work folder.").tag(config=True)
    threads = Integer(0, help="OMP/MKL/torch threads of the kernel (0: library default).").tag(config=True)
    allow_unsafe = Bool(False, help="Without bubblewrap, run kernels unsandboxed (--unsafe-no-sandbox).").tag(config=True)
    scheduler = Unicode("", help="Dask scheduler that records on its workers ('': this machine).").tag(config=True)
    gradebook_lock = Instance(GradebookLock, allow_none=True,
                              help="The gradebook lock the calling process holds; released while the sandbox runs.").tag(config=True)

    def limits(self, master_cells: list) -> Limits:
        """The run's limits; times from the master's stored run (its cells) unless given explicitly."""
        derived = time_limits.limits_from(master_cells, self.time_factor, self.cell_floor, self.notebook_floor,
                                          experiments=self.run_experiments)
        return Limits(cell_timeout=self.cell_timeout or derived.default_cell,
                      notebook_timeout=self.notebook_timeout or derived.notebook,
                      cell_timeouts=() if self.cell_timeout else derived.cells,
                      memory_bytes=self.memory_bytes, max_processes=self.max_processes,
                      output_bytes=self.output_bytes, disk_bytes=self.disk_bytes, threads=self.threads)

    def preprocess(self, nb: NotebookNode, resources: dict):
        student = resources["nbgrader"]["student"]
        notebook = resources["nbgrader"]["notebook"]
        workdir = Path(self.work_root) / f"{student}-{notebook}-{uuid.uuid4().hex[:8]}"
        grading = workdir / GRADING_FOLDER
        cases = {}
        for cell in autograded_test_cells(nb):
            grade_id = cell.metadata.nbgrader["grade_id"]
            item = REGISTRY.get(grade_id)
            if item is not None:
                cases[grade_id] = write_inputs(item, seed_for(self.seed_salt, student, grade_id), grading, self.device)
        # The kernel shows, and the judge checks, the per-student parameters of the id nbgrader files
        # this submission under (workbook.variants).
        env = {STUDENT_ENV: student, **({"WORKBOOK_FAST": "1"} if self.fast else {})}
        env["WORKBOOK_DATA"] = "synthetic"     # every student on the embedded set, whatever the grader's shell says
        if self.gpu:
            env["CUDA_VISIBLE_DEVICES"] = self.gpu
        run = remote_runner(self.scheduler) if self.scheduler else run_sandboxed
        with self.gradebook_lock.released() if self.gradebook_lock else contextlib.nullcontext():
            master = time_limits.read_cells(Path(self.reference_folder) / f"{notebook}.ipynb")  # its experiments, times
            skipped = frozenset() if self.run_experiments else experiment_ids(master)
            to_run = nbformat.from_dict({**nb, "cells": [c for c in nb.cells if not _left_out(c, skipped)]})
            result = run(to_run, workdir, hide=[Path(p) for p in self.hide], env=env, limits=self.limits(master),
                         unsafe=self.allow_unsafe)
        for line in result.degraded:
            self.log.warning("SANDBOX DEGRADED for %s/%s: %s", student, notebook, line)
        self.log.info("sandbox of %s/%s: %s", student, notebook, "; ".join(result.protections))
        self._copy_outputs(nb, result.notebook)
        for cell in nb.cells:
            if _left_out(cell, skipped):
                cell.outputs = [NotebookNode(output_type="stream", name="stdout", text=NOT_RUN)]
        for cell in autograded_test_cells(nb):
            grade_id = cell.metadata.nbgrader["grade_id"]
            verdict = judge(grade_id, cases.get(grade_id, []), grading, self.device, student)
            if verdict.message == NO_RECORDING:
                verdict = Verdict(False, _no_recording_message(nb, cell))
            if not verdict.passed and result.status != "ok":
                verdict = Verdict(False, f"{verdict.message}; {result.message}")
            cell.outputs = verdict_outputs(verdict)
        if not self.keep_workdirs:
            shutil.rmtree(workdir, ignore_errors=True)
        return nb, resources

    @staticmethod
    def _copy_outputs(nb: NotebookNode, executed: NotebookNode | None) -> None:
        # The trusted notebook keeps its own sources; only outputs come from the sandbox, matched by cell id.
        ran = {c.get("id"): c for c in (executed.cells if executed else []) if c.cell_type == "code"}
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            other = ran.get(cell.get("id"))
            cell.outputs = list(other.get("outputs", [])) if other is not None else []
            cell.execution_count = other.get("execution_count") if other is not None else None

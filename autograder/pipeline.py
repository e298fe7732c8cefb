"""nbgrader preprocessor that replaces `Execute`: sandboxed recording, then a trusted verdict.

`Autograde.autograde_preprocessors` starts with nbgrader's `Execute`, which runs hidden tests in the
student's own kernel (where `assert` and every helper can be patched). `SandboxedExecute` takes its
place: it writes each check's inputs, runs the notebook in `autograder.sandbox`, copies the
student's outputs into the trusted notebook, and then replaces the outputs of every autograded test
cell with the judge's verdict, which nbgrader's `SaveAutoGrades` turns into points as usual.
"""
import shutil
import uuid
from pathlib import Path

from nbformat import NotebookNode
from nbgrader import utils
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Bool, Integer, List, Unicode

from autograder.checks import REGISTRY, Verdict, seed_for
from autograder.judge import NO_RECORDING, judge, write_inputs
from autograder.sandbox import run_sandboxed

__all__ = ["SandboxedExecute", "verdict_outputs"]


def verdict_outputs(verdict: Verdict) -> list[NotebookNode]:
    """The outputs a graded cell shows: a line of text when passed, an error naming the reason when not."""
    if verdict.passed:
        return [NotebookNode(output_type="stream", name="stdout", text=f"✔ {verdict.message}\n")]
    return [NotebookNode(output_type="error", ename="GradingFailure", evalue=verdict.message,
                         traceback=[f"GradingFailure: {verdict.message}"])]


def _cell_error(cell: NotebookNode) -> str:
    """What the student's kernel reported in this cell, so feedback says why nothing was recorded."""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return f". In your kernel this cell raised {output.get('ename')}: {str(output.get('evalue'))[:200]}"
    return ""


def autograded_test_cells(nb: NotebookNode) -> list[NotebookNode]:
    return [c for c in nb.cells if c.cell_type == "code" and utils.is_grade(c) and not utils.is_solution(c)]


class SandboxedExecute(NbGraderPreprocessor):
    """Record in a sandboxed kernel, judge here."""

    cell_timeout = Integer(120, help="Seconds one cell may run.").tag(config=True)
    notebook_timeout = Integer(900, help="Seconds one notebook may run.").tag(config=True)
    seed_salt = Unicode("sizing-and-tta", help="Mixed into each submission's input seeds.").tag(config=True)
    work_root = Unicode(help="Folder for the sandboxes' working folders.").tag(config=True)
    hide = List(Unicode(), help="Folders the kernel must not see (gradebook, submissions).").tag(config=True)
    fast = Bool(True, help="Run training cells with the reduced budget (WORKBOOK_FAST=1).").tag(config=True)
    keep_workdirs = Bool(False, help="Keep sandbox folders for debugging.").tag(config=True)
    device = Unicode("cpu", help="Device the recorder moves inputs to.").tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: dict):
        student = resources["nbgrader"]["student"]
        notebook = resources["nbgrader"]["notebook"]
        workdir = Path(self.work_root) / f"{student}-{notebook}-{uuid.uuid4().hex[:8]}"
        grading = workdir / ".grading"
        cases = {}
        for cell in autograded_test_cells(nb):
            grade_id = cell.metadata.nbgrader["grade_id"]
            check = REGISTRY.get(grade_id)
            if check is not None:
                cases[grade_id] = write_inputs(check, seed_for(self.seed_salt, student, grade_id), grading, self.device)
        env = {"WORKBOOK_FAST": "1"} if self.fast else {}
        result = run_sandboxed(nb, workdir, cell_timeout=self.cell_timeout, notebook_timeout=self.notebook_timeout,
                               hide=[Path(p) for p in self.hide], env=env)
        if not result.isolated:
            self.log.warning("%s/%s ran WITHOUT namespace isolation", student, notebook)
        self._copy_outputs(nb, result.notebook)
        for cell in autograded_test_cells(nb):
            grade_id = cell.metadata.nbgrader["grade_id"]
            verdict = judge(grade_id, cases.get(grade_id, []), grading, self.device)
            if verdict.message == NO_RECORDING:
                verdict = Verdict(False, f"{verdict.message}{_cell_error(cell)}")
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

"""Grade a class: schedule its students' notebooks over worker processes and collect each student's result.

The stages, one module each: intake (`autograder.intake`: the untrusted folder into the grading root),
the gradebook (`autograder.gradebook`: nbgrader's API, scores), autograding (nbgrader's `autograde`
with `autograder.pipeline.SandboxedExecute`), resuming (`autograder.resume`: status markers) and the
reports (`autograder.reports`: CSVs and the table). Submissions are read, never changed. A folder of
submissions holds one folder per student, with the notebooks either directly inside or inside a folder
named after the assignment (nbgrader's own layout).
"""
import logging
import multiprocessing as mp
import re
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.apps import NbGraderAPI

from autograder.config import ASSIGNMENT, REPO_ROOT
from autograder.gradebook import (GradingError, gradebook_notes, make_api, prepare_gradebook, read_scores,
                                  require_success)
from autograder.gradebook_lock import GradebookLock
from autograder.intake import IntakeError, master_cells, nbgrader_ids, stage_submission
from autograder.reports import StudentResult
from autograder.resume import earlier_result, submission_fingerprint, write_marker
from autograder.sandbox import NO_BWRAP, isolation_available
from autograder.time_limits import stored_run_seconds

__all__ = ["ClassSettings", "StudentTask", "NotebookJob", "AutogradeOutcome", "grade_class", "worker_pool"]

log = logging.getLogger(__name__)

ALL_NOTEBOOKS = "*"  # nbgrader's notebook id that grades every notebook of a submission in one call


@dataclass(frozen=True)
class ClassSettings:
    """How a class is graded, as `grade_class` was asked; every autograde call gets it.

    Args:
        grading_root: gradebook, copies of the submissions, autograded notebooks, feedback, status markers.
        source_root: the master notebooks (None: the repo's source/).
        hide: folders the kernels must not see besides the grading root (the submissions).
        late_policy: "none" (late work flagged, not penalized) or "zero" (late work scores 0).
        sandbox: settings of `SandboxedExecute` (limits, threads, unsafe, scheduler).
        feedback: also write HTML feedback per student.
    """
    grading_root: Path
    source_root: Path | None = None
    hide: tuple[Path, ...] = ()
    late_policy: str = "none"
    sandbox: dict = field(default_factory=dict)
    feedback: bool = True

    def api(self, **sandbox) -> NbGraderAPI:
        """nbgrader's API on the grading root; `sandbox` adds `SandboxedExecute` settings for this call."""
        return make_api(self.grading_root, **self.course_config(), sandbox={**self.sandbox, **sandbox})

    def course_config(self) -> dict:
        """The arguments of `autograder.config.course_config` besides the grading root and the sandbox."""
        return {"source_root": self.source_root, "hide": list(self.hide), "late_policy": self.late_policy}


@dataclass(frozen=True)
class StudentTask:
    """A student folder to grade."""
    name: str            # the folder's name, as the table shows it
    student: str         # the nbgrader id it is graded under
    student_dir: Path
    fingerprint: str     # of its files and the sources, for `autograder.resume`


@dataclass(frozen=True)
class NotebookJob:
    """One nbgrader autograde call: one notebook of a student, or all of them (`ALL_NOTEBOOKS`)."""
    student: str
    notebook: str
    sandbox: dict = field(default_factory=dict)  # this call's own `SandboxedExecute` settings (its GPU)


@dataclass
class AutogradeOutcome:
    """What one autograde call did: `error` is None when it worked."""
    student: str
    start: float
    error: str | None = None
    degraded: list[str] = field(default_factory=list)  # protections the sandbox could not enforce


@dataclass
class StudentProgress:
    """A student whose autograde calls are running: how many are left and the outcomes so far."""
    task: StudentTask
    notes: list[str]
    left: int
    outcomes: list[AutogradeOutcome] = field(default_factory=list)


def autograde_notebook(settings: ClassSettings, job: NotebookJob) -> AutogradeOutcome:
    """One `nbgrader autograde` call, then its feedback.

    Runs in a worker process when grading in parallel; holds the gradebook lock except while the
    sandbox runs (the lock is handed to `SandboxedExecute`, which releases it around the sandbox).
    Never raises.
    """
    outcome = AutogradeOutcome(job.student, time.monotonic())
    lock = GradebookLock(settings.grading_root)
    api = settings.api(**job.sandbox, gradebook_lock=lock)
    api.coursedir.notebook_id = job.notebook
    what = f"autograde of {job.student}" + ("" if job.notebook == ALL_NOTEBOOKS else f"/{job.notebook}")
    try:
        with lock.held():
            result = api.autograde(ASSIGNMENT, job.student, force=True, create=True)
            require_success(result, what)
            if settings.feedback:
                require_success(api.generate_feedback(ASSIGNMENT, job.student, force=True), f"feedback of {job.student}")
        # "SANDBOX DEGRADED for <student>/<notebook>: <what>": one note per missing protection, not per notebook.
        outcome.degraded = sorted({re.sub(r"^\s*(for \S+)?\s*:\s*", "", line.split("SANDBOX DEGRADED", 1)[1])
                                   for line in (result.get("log") or "").splitlines() if "SANDBOX DEGRADED" in line})
    except (GradingError, MissingEntry) as e:
        log.error("%s", e)
        outcome.error = str(e).splitlines()[0]
    except Exception as e:  # one student's failure never stops the class
        log.exception("%s failed", what)
        outcome.error = f"internal error {type(e).__name__}: {str(e)[:200]}"
    return outcome


def conclude_student(settings: ClassSettings, progress: StudentProgress) -> StudentResult:
    """After every autograde call of a student: scores, notes, then the status marker (written last)."""
    task, root = progress.task, settings.grading_root
    start = min(o.start for o in progress.outcomes)
    errors = [o.error for o in progress.outcomes if o.error]
    notes = progress.notes + sorted({line for o in progress.outcomes for line in o.degraded})
    if errors:
        return StudentResult(task.name, f"not graded: {errors[0]}", notes=notes)
    try:
        with GradebookLock(root).held():
            scores, total, max_total = read_scores(root, task.student)
            notes += gradebook_notes(root, task.student, settings.late_policy)
            graded = StudentResult(task.name, "graded", scores, total, max_total, notes, time.monotonic() - start)
            write_marker(root, task.student, task.fingerprint, graded)  # a kill before this grades the student again
            return graded
    except (GradingError, MissingEntry) as e:
        log.error("%s", e)
        return StudentResult(task.name, f"not graded: {str(e).splitlines()[0]}", notes=notes)
    except Exception as e:
        log.exception("grading %s failed", task.student)
        return StudentResult(task.name, f"not graded: internal error {type(e).__name__}: {str(e)[:200]}", notes=notes)


def _single_threaded_torch() -> None:
    # A forked child of a process whose OpenMP pool is running (any earlier torch op there, e.g. judging
    # with --jobs 1 in the same Python session) hangs in its first parallel torch op: GNU libgomp's pool
    # does not survive fork. With one thread torch never enters an OpenMP region.
    import torch
    torch.set_num_threads(1)


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """The grading workers: forked (they start without importing torch and nbgrader again), judging
    with one torch thread each (the cores are busy with the sandboxes; see `_single_threaded_torch`)."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("fork"),
                               initializer=_single_threaded_torch)


def _gpus() -> int:
    try:
        import torch
        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:
        return 0


def grade_class(submissions: Path, grading_root: Path, *, feedback: bool = True, jobs: int = 1,
                source_root: Path | None = None, sandbox: dict | None = None, due: datetime | None = None,
                late_policy: str = "none", regrade: bool = False, progress=None,
                unsafe_no_sandbox: bool = False) -> list[StudentResult]:
    """Grade every student folder under `submissions`; one student's problem never stops the others.

    Args:
        submissions: one folder per student, holding the notebooks (or an `<assignment>/` folder of them).
        grading_root: gradebook, copies of the submissions, autograded notebooks, feedback, status markers.
        feedback: also write HTML feedback per student.
        jobs: notebooks graded at once. With jobs > 1 every notebook is its own nbgrader autograde call, so
            one submission's notebooks also run in parallel; the sandboxes run in parallel, every gradebook
            access is serialized by a lock.
        source_root: the master notebooks (default: the repo's source/).
        sandbox: settings of `SandboxedExecute` (limits, threads, gpu).
        due: the assignment's due date (naive UTC); later nbgrader timestamps (timestamp.txt) are late.
        late_policy: "none" (late work flagged, not penalized) or "zero" (late work scores 0).
        regrade: grade again students an earlier run already graded from the same files.
        progress: called with (done, total, result) after each student.
        unsafe_no_sandbox: grade even without bubblewrap (kernels unsandboxed); every result then says so.
    """
    submissions, grading_root = Path(submissions), Path(grading_root)
    entries = _class_entries(submissions, jobs, late_policy, unsafe_no_sandbox)
    sandbox = {**(sandbox or {}), "allow_unsafe": unsafe_no_sandbox}
    if jobs > 1:
        sandbox.setdefault("threads", 1)  # torch's threads on top of parallel kernels thrash the cores
    settings = ClassSettings(grading_root, source_root, (submissions,), late_policy, sandbox, feedback)
    api = prepare_gradebook(grading_root, **settings.course_config(), sandbox=settings.sandbox)
    masters = master_cells(api.coursedir.db_url, api.coursedir.course_id)
    ids = nbgrader_ids([e.name for e in entries])
    if due is not None:
        with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gb:
            gb.update_or_create_assignment(ASSIGNMENT, duedate=due)
    results: dict[str, StudentResult] = {}
    tasks = []
    for entry in entries:
        fingerprint = submission_fingerprint(entry, source_root)
        kept = None if regrade or not fingerprint else earlier_result(grading_root, ids[entry.name], fingerprint)
        if kept is not None:
            results[entry.name] = kept
        else:
            tasks.append(StudentTask(entry.name, ids[entry.name], entry, fingerprint))

    def report(result: StudentResult) -> None:
        results[result.student] = result
        if progress is not None:
            progress(len(results), len(entries), result)

    for i, result in enumerate(list(results.values())):
        if progress is not None:
            progress(i + 1, len(entries), result)
    students, pending = _stage(settings, tasks, masters, per_notebook=jobs > 1, report=report)

    def collect(outcome: AutogradeOutcome) -> None:
        state = students[outcome.student]
        state.outcomes.append(outcome)
        state.left -= 1
        if state.left == 0:
            report(conclude_student(settings, state))

    _run(settings, pending, jobs, collect)
    return [results[e.name] for e in entries]


def _class_entries(submissions: Path, jobs: int, late_policy: str, unsafe_no_sandbox: bool) -> list[Path]:
    """Every entry of the submissions folder, hidden ones too (each is graded or reported), after
    checking the arguments; GradingError says what to fix."""
    if jobs < 1:
        raise GradingError(f"--jobs must be at least 1, got {jobs}")
    if late_policy not in ("none", "zero"):
        raise GradingError(f"late policy must be 'none' or 'zero', got {late_policy!r}")
    if not isolation_available() and not unsafe_no_sandbox:
        raise GradingError(NO_BWRAP)
    if not submissions.is_dir():
        raise GradingError(f"submissions folder {submissions} does not exist; pass SUBMISSIONS=<folder with one folder per student>")
    entries = sorted(submissions.iterdir())
    if not entries:
        raise GradingError(f"{submissions} holds no student folders; expected {submissions}/<student>/<notebook>.ipynb")
    return entries


def _stage(settings: ClassSettings, tasks: list[StudentTask], masters: dict, *, per_notebook: bool,
           report) -> tuple[dict[str, StudentProgress], list[NotebookJob]]:
    """Copy each student's notebooks in and plan the autograde calls: one per student when serial; one per
    notebook when parallel, so that the notebooks of one submission (or of a small class) also spread over
    the jobs, longest first (by the master notebooks' stored run times of the cells grading runs): the last one to start is short.
    A student who cannot be staged is reported at once."""
    sources = Path(settings.source_root or REPO_ROOT / "source") / ASSIGNMENT
    experiments = bool(settings.sandbox.get("run_experiments"))
    stored_seconds = stored_run_seconds(sources, experiments=experiments) if per_notebook else {}
    lock = GradebookLock(settings.grading_root)
    students, units = {}, []
    for task in tasks:
        try:
            notebooks, notes = stage_submission(task.student_dir, task.student, settings.grading_root, masters, lock)
        except IntakeError as e:
            report(StudentResult(task.name, f"not graded: {str(e).splitlines()[0]}"))
            continue
        except OSError as e:  # unreadable files: the instructor can fix the permissions and run again
            report(StudentResult(task.name, f"not graded: {e.filename} could not be read ({e.strerror}); "
                                            f"make it readable and run the same command again"))
            continue
        calls = sorted(notebooks, key=lambda n: -stored_seconds.get(n, 0.0)) if per_notebook else [ALL_NOTEBOOKS]
        students[task.student] = StudentProgress(task, notes, len(calls))
        units += [(task.student, notebook) for notebook in calls]
    gpus = _gpus()  # each kernel gets one device, round-robin
    return students, [NotebookJob(student, notebook, {"gpu": str(i % gpus), "device": "cuda:0"} if gpus else {})
                      for i, (student, notebook) in enumerate(units)]


def _run(settings: ClassSettings, pending: list[NotebookJob], jobs: int, collect) -> None:
    """Run the autograde calls, in this process when serial, else over forked workers; `collect` gets each outcome."""
    if jobs == 1 or len(pending) <= 1:
        for job in pending:
            collect(autograde_notebook(settings, job))
        return
    with worker_pool(min(jobs, len(pending))) as pool:
        futures = {pool.submit(autograde_notebook, settings, job): job for job in pending}
        for future in as_completed(futures):
            try:
                outcome = future.result()
            except Exception as e:  # a worker process that died
                outcome = AutogradeOutcome(futures[future].student, time.monotonic(),
                                           f"worker failed ({type(e).__name__}: {e})")
            collect(outcome)

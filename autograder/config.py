"""The nbgrader configuration of the course, shared by nbgrader_config.py and the grading CLI."""
from pathlib import Path

from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, ClearHiddenTests, GetGrades,
                                    IgnorePattern, LimitOutput, SaveAutoGrades)
from traitlets.config import Config

from autograder.feedback import feedback_config

REPO_ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "sizing_and_tta"
COURSE_ID = "sizing-and-tta"


def course_config(grading_root: Path, *, release_root: Path | None = None, fast: bool = True,
                  source_root: Path | None = None, sandbox: dict | None = None, hide: list[Path] = (),
                  late_policy: str = "none") -> Config:
    """nbgrader settings: sources from the repo, all grading state under `grading_root`.

    Args:
        grading_root: folder for the gradebook, submissions, autograded notebooks and feedback.
        release_root: where `generate_assignment` writes (default: the repo's committed `release/`).
        fast: run training cells with the reduced budget while grading.
        source_root: the master notebooks' folder (default: the repo's `source/`; tests use small ones).
        sandbox: settings of `SandboxedExecute` (cell_timeout, memory_bytes, threads, gpu, ...).
        hide: more folders the kernels must not see (the class's submissions folder).
        late_policy: nbgrader's late penalty: "none" (graded and flagged late) or "zero".
    """
    from autograder.pipeline import SandboxedExecute  # here: the pipeline imports torch, which the course's names do not need

    grading_root = Path(grading_root).resolve()
    c = Config()
    c.CourseDirectory.course_id = COURSE_ID
    c.CourseDirectory.root = str(grading_root)
    c.CourseDirectory.source_directory = str(source_root or REPO_ROOT / "source")
    c.CourseDirectory.release_directory = str(release_root or REPO_ROOT / "release")
    c.CourseDirectory.submitted_directory = str(grading_root / "submitted")
    c.CourseDirectory.autograded_directory = str(grading_root / "autograded")
    c.CourseDirectory.feedback_directory = str(grading_root / "feedback")
    c.CourseDirectory.db_url = f"sqlite:///{grading_root / 'gradebook.db'}"
    c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", ".grading", "runs"]
    c.Exchange.root = str(grading_root / "exchange")
    c.Autograde.autograde_preprocessors = [SandboxedExecute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
                                           SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
    c.SandboxedExecute.work_root = str(grading_root / "sandboxes")
    c.SandboxedExecute.reference_folder = str(Path(source_root or REPO_ROOT / "source") / ASSIGNMENT)
    c.SandboxedExecute.hide = [str(grading_root), *(str(Path(p).resolve()) for p in hide)]
    c.SandboxedExecute.fast = fast
    for key, value in (sandbox or {}).items():
        setattr(c.SandboxedExecute, key, value)
    c.LateSubmissionPlugin.penalty_method = late_policy
    # Feedback must not show hidden tests (nbgrader #917): clear them from the autograded copy.
    c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, CSSHTMLHeaderPreprocessor]
    c.ClearHiddenTests.enforce_metadata = False
    c.merge(feedback_config())     # formulas render offline; figures keep their alt text
    c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
    return c

"""The grading folder's layout: where the grader's inputs and the kernel's results lie during a graded run.

The grader writes `inputs/<grade id>.pt` into the folder, the recorder in the kernel reads them and writes
`outputs/<grade id>.pt`, and the judge reads those (`workbook/recording_format.py` says what the files hold).
The folder is `GRADING_FOLDER` in the kernel's work folder; the kernel finds it through `WORKBOOK_GRADING_DIR`.
No torch here: the sandbox and the Dask workers use these names without importing it.
"""
from pathlib import Path

__all__ = ["GRADING_FOLDER", "INPUTS_DIR", "RESULTS_DIR", "INPUTS", "RESULTS", "inputs_file", "results_file"]

GRADING_FOLDER = ".grading"  # in the kernel's work folder
INPUTS_DIR = "inputs"        # grader -> kernel, one `<grade id>.pt` each
RESULTS_DIR = "outputs"      # kernel -> grader, one `<grade id>.pt` each
INPUTS = Path(GRADING_FOLDER, INPUTS_DIR)    # both relative to the kernel's work folder
RESULTS = Path(GRADING_FOLDER, RESULTS_DIR)


def inputs_file(folder: Path, grade_id: str) -> Path:
    """The inputs file of `grade_id` in the grading folder `folder`."""
    return Path(folder) / INPUTS_DIR / f"{grade_id}.pt"


def results_file(folder: Path, grade_id: str) -> Path:
    """The results file of `grade_id` in the grading folder `folder`."""
    return Path(folder) / RESULTS_DIR / f"{grade_id}.pt"

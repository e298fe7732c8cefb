"""nbgrader settings of the course, for both sides of JupyterLab and for the nbgrader command line.

Generated from `autograder.config.course_config`; edit that function instead. Grading state (the
gradebook, submissions, autograded notebooks, feedback) and the exchange folder live in .grading/,
outside the tracked tree, or in $WORKBOOK_GRADING_ROOT when that is set (the browser test uses it to keep
its gradebook and exchange apart). The instructor's JupyterLab (`make lab-instructor`) finds this file in
its working directory; the student's (`make lab`) through JUPYTER_CONFIG_PATH, because nbgrader's
assignment list reads the configuration from the notebook root (release/sizing_and_tta).
"""
import os
from pathlib import Path

from autograder.config import course_config

c = get_config()  # noqa: F821 (provided by traitlets when nbgrader loads this file)
_grading_root = Path(os.environ.get("WORKBOOK_GRADING_ROOT") or Path(__file__).resolve().parent / ".grading")
_course = course_config(_grading_root)
# nbgrader finds assignments (formgrader's list, `nbgrader db assignment list`) only when the source and
# release folders are given relative to the course root: an absolute path never matches its path regex.
for _step in ("source_directory", "release_directory"):
    _course.CourseDirectory[_step] = os.path.relpath(_course.CourseDirectory[_step], _grading_root.resolve())
# nbgrader's exchange refuses a missing folder ("Unwritable directory ... exchange"): create it here, so
# the assignment list (student) and release/collect in formgrader (instructor) work on a fresh checkout.
Path(_course.Exchange.root).mkdir(parents=True, exist_ok=True)
c.merge(_course)

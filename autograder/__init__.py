"""Instructor-only grading package: reference solutions, the rubric (trusted judging), sandbox and CLI.

Nothing in here may be imported by the student package `workbook` or reach `release/`.
"""
import warnings

from sqlalchemy.exc import SAWarning

# nbgrader 0.9.6's gradebook code (nbgrader/api.py) relates a new row to one that is not in the session
# yet; SQLAlchemy 2.0 then warns "Object of type <X> not in session, ... will not proceed" during an
# autoflush. The rows are written at the next flush (tests/test_grading_pipeline.py reads every score back),
# so the warning only alarms instructors at `make grade`; it is nbgrader's to fix.
warnings.filterwarnings("ignore", message="Object of type .* not in session", category=SAWarning)

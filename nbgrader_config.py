"""nbgrader settings for instructors running nbgrader or formgrader from the repository root.

Generated from `autograder.config.course_config`; edit that function instead. Grading state (the
gradebook, submissions, autograded notebooks, feedback) lives in .grading/, outside the tracked tree.
"""
from pathlib import Path

from autograder.config import course_config

c = get_config()  # noqa: F821 (provided by traitlets when nbgrader loads this file)
c.merge(course_config(Path(__file__).resolve().parent / ".grading"))

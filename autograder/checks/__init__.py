"""Trusted checks: for each graded test cell, the inputs the grader makes and how outputs are judged.

`REGISTRY` maps a grade cell id (nbgrader `grade_id`) to its `Check`. Every autograded test cell of
the source notebooks must have one; a test enforces it.
"""
from autograder.checks.core import Check, Case, Verdict, seed_for
from autograder.checks import imagenette, normalization

REGISTRY: dict[str, Check] = {check.grade_id: check for module in (imagenette, normalization) for check in module.CHECKS}

__all__ = ["REGISTRY", "Check", "Case", "Verdict", "seed_for"]

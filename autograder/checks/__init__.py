"""Trusted checks: for each graded test cell, the inputs the grader makes and how outputs are judged.

`REGISTRY` maps a grade cell id (nbgrader `grade_id`) to its `Check`. It collects `CHECKS` from every
module of this package except `core` (one module per notebook concept). Every autograded test cell of
the source notebooks must have a check, and every check a cell; tests/test_release.py enforces it.
"""
import importlib
import pkgutil

from autograder.checks.core import Case, Check, Verdict, seed_for


def _collect() -> dict[str, Check]:
    registry: dict[str, Check] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name == "core":
            continue
        for check in importlib.import_module(f"{__name__}.{info.name}").CHECKS:
            if check.grade_id in registry:
                raise ValueError(f"grade id {check.grade_id!r} is defined twice (in {info.name})")
            registry[check.grade_id] = check
    return registry


REGISTRY: dict[str, Check] = _collect()

__all__ = ["REGISTRY", "Check", "Case", "Verdict", "seed_for"]

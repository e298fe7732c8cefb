"""The rubric: for each graded test cell, the inputs the grader makes and how outputs are judged.

`REGISTRY` maps a grade cell id (nbgrader `grade_id`) to its `RubricItem`. It collects `ITEMS` from every
module of this package except `core` (one module per notebook concept). Every autograded test cell of
the source notebooks must have a rubric item, and every item a cell; tests/test_release.py enforces it.
"""
import importlib
import pkgutil

from autograder.rubric.core import Case, RubricItem, Verdict, seed_for


def _collect() -> dict[str, RubricItem]:
    registry: dict[str, RubricItem] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name == "core":
            continue
        for item in importlib.import_module(f"{__name__}.{info.name}").ITEMS:
            if item.grade_id in registry:
                raise ValueError(f"grade id {item.grade_id!r} is defined twice (in {info.name})")
            registry[item.grade_id] = item
    return registry


REGISTRY: dict[str, RubricItem] = _collect()

__all__ = ["REGISTRY", "RubricItem", "Case", "Verdict", "seed_for"]

"""The recorder that hidden test cells call while a submission is graded.

Grading runs in two phases (see docs/architecture.md). In phase 1 the student's notebook runs in a sandboxed
kernel, and each hidden test cell only *records*: `record(grade_id, fn)` reads the inputs the grader
prepared for that graded cell, calls `fn` on each, and saves what came back (value, device, or the
exception raised) for the grader's own process to judge in phase 2. Nothing here decides a grade,
so nothing here is worth patching.

Outside grading (`WORKBOOK_GRADING_DIR` unset) both functions do nothing and return None.
The files' format is `workbook.recording_format`'s.
"""
import os
from pathlib import Path

import torch

from workbook.grading_folder import inputs_file, results_file
from workbook.recording_format import decode_arg, encode_value

__all__ = ["record", "record_value", "grading_dir", "call_case"]

GRADING_DIR_ENV = "WORKBOOK_GRADING_DIR"


def grading_dir() -> Path | None:
    """The folder the grader shares with this kernel, or None outside grading."""
    value = os.environ.get(GRADING_DIR_ENV)
    return Path(value) if value else None


def _snapshot(args, kwargs):
    # The arguments after the call, so the judge can tell whether the function changed its inputs.
    return encode_value({"args": [a if isinstance(a, torch.Tensor) else None for a in args],
                         "kwargs": {k: v if isinstance(v, torch.Tensor) else None for k, v in kwargs.items()}})


def call_case(fn, case: dict, device: str) -> dict:
    """Call `fn` on one case of an inputs file; the result, or the exception it raised, as plain data.

    A case may name its own device (the grader runs bad-argument cases on the CPU)."""
    device = case.get("device", device)
    args = decode_arg(case.get("args", []), device)
    kwargs = decode_arg(case.get("kwargs", {}), device)
    try:
        value = fn(*args, **kwargs)
    except Exception as e:
        return {"ok": False, "error_type": type(e).__name__,
                "error_mro": [c.__name__ for c in type(e).__mro__], "error": str(e)[:500],
                "after": _snapshot(args, kwargs)}
    return {"ok": True, "value": encode_value(value), "after": _snapshot(args, kwargs)}


def _write(grade_id: str, payload: dict, folder: Path) -> None:
    path = results_file(folder, grade_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def record(grade_id: str, fn) -> int | None:
    """Call `fn` on the grader's inputs for `grade_id` and save the results for judging.

    Args:
        grade_id: the grade cell's id (nbgrader `grade_id`) whose inputs to use.
        fn: the student's function.

    Returns:
        The number of cases recorded, or None outside grading.
    """
    folder = grading_dir()
    if folder is None:
        return None
    spec = torch.load(inputs_file(folder, grade_id), weights_only=True)
    device = spec.get("device", "cpu")
    results = [call_case(fn, case, device) for case in spec["cases"]]
    _write(grade_id, {"grade_id": grade_id, "results": results}, folder)
    return len(results)


def record_value(grade_id: str, value) -> int | None:
    """Save an answer (a string, a number, a list) for the judge; returns 1, or None outside grading."""
    folder = grading_dir()
    if folder is None:
        return None
    _write(grade_id, {"grade_id": grade_id, "results": [{"ok": True, "value": encode_value(value), "after": None}]}, folder)
    return 1

"""The recorder that hidden test cells call while a submission is graded.

Grading runs in two phases (see docs/architecture.md). In phase 1 the student's notebook runs in a sandboxed
kernel, and each hidden test cell only *records*: `record(probe, fn)` reads the inputs the grader
prepared for that probe, calls `fn` on each, and saves what came back (value, device, or the
exception raised) for the grader's own process to judge in phase 2. Nothing here decides a grade,
so nothing here is worth patching.

Outside grading (`WORKBOOK_GRADING_DIR` unset) both functions do nothing and return None.

File format (torch.save, read back with `weights_only=True`): inputs/<probe>.pt holds
{"device": str, "cases": [{"args": [...], "kwargs": {...}}, ...]}; outputs/<probe>.pt holds
{"probe": str, "results": [...]} with one entry per case.
"""
import os
from pathlib import Path

import torch

__all__ = ["record", "record_value", "grading_dir", "encode", "decode_args", "call_case", "ONE_SHOT"]

GRADING_DIR_ENV = "WORKBOOK_GRADING_DIR"
MARK = "__workbook__"
ONE_SHOT = "one_shot"  # an argument delivered as a single-pass iterator over its items


def grading_dir() -> Path | None:
    """The folder the grader shares with this kernel, or None outside grading."""
    value = os.environ.get(GRADING_DIR_ENV)
    return Path(value) if value else None


def encode(value, depth: int = 0):
    """Turn a returned value into plain data that `torch.load(weights_only=True)` accepts."""
    if depth > 8:
        return {MARK: "unsupported", "type": "nested too deeply", "repr": ""}
    if isinstance(value, torch.Tensor):
        # Values are graded, not types: a subclass (fastai's TensorBase, a Parameter) is kept as a plain
        # tensor, which `torch.load(weights_only=True)` reads back.
        data = value.detach().as_subclass(torch.Tensor).to("cpu", copy=True)
        return {MARK: "tensor", "data": data, "device": str(value.device),
                "requires_grad": bool(value.requires_grad)}
    if value is None or type(value) in (bool, int, float, str):
        return value
    if type(value) is tuple:
        return {MARK: "tuple", "items": [encode(v, depth + 1) for v in value]}
    if type(value) is list:
        return [encode(v, depth + 1) for v in value]
    if type(value) is dict and all(type(k) is str for k in value):
        return {k: encode(v, depth + 1) for k, v in value.items()}
    # Anything else (numpy arrays, custom objects with a permissive __eq__, ...) is described, not kept.
    return {MARK: "unsupported", "type": f"{type(value).__module__}.{type(value).__qualname__}",
            "repr": _safe_repr(value)}


def _safe_repr(value) -> str:
    try:
        return repr(value)[:200]
    except Exception as e:  # a hostile __repr__ must not stop the recording
        return f"<repr failed: {type(e).__name__}>"


def decode_args(value, device: str):
    """Rebuild call arguments from an inputs file: tensors go to `device`, markers become objects."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict) and value.get(MARK) == ONE_SHOT:
        return iter([decode_args(v, device) for v in value["items"]])
    if isinstance(value, dict) and value.get(MARK) == "tuple":
        return tuple(decode_args(v, device) for v in value["items"])
    if isinstance(value, list):
        return [decode_args(v, device) for v in value]
    if isinstance(value, dict):
        return {k: decode_args(v, device) for k, v in value.items()}
    return value


def _snapshot(args, kwargs):
    # The arguments after the call, so the judge can tell whether the function changed its inputs.
    return encode({"args": [a if isinstance(a, torch.Tensor) else None for a in args],
                   "kwargs": {k: v if isinstance(v, torch.Tensor) else None for k, v in kwargs.items()}})


def call_case(fn, case: dict, device: str) -> dict:
    """Call `fn` on one case of an inputs file; the result, or the exception it raised, as plain data.

    A case may name its own device (the grader runs bad-argument cases on the CPU)."""
    device = case.get("device", device)
    args = decode_args(case.get("args", []), device)
    kwargs = decode_args(case.get("kwargs", {}), device)
    try:
        value = fn(*args, **kwargs)
    except Exception as e:
        return {"ok": False, "error_type": type(e).__name__,
                "error_mro": [c.__name__ for c in type(e).__mro__], "error": str(e)[:500],
                "after": _snapshot(args, kwargs)}
    return {"ok": True, "value": encode(value), "after": _snapshot(args, kwargs)}


def _write(probe: str, payload: dict, folder: Path) -> None:
    out = folder / "outputs"
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{probe}.pt.tmp"
    torch.save(payload, tmp)
    os.replace(tmp, out / f"{probe}.pt")


def record(probe: str, fn) -> int | None:
    """Call `fn` on the grader's inputs for `probe` and save the results for judging.

    Args:
        probe: the name of the graded check (the grade cell's id).
        fn: the student's function.

    Returns:
        The number of cases recorded, or None outside grading.
    """
    folder = grading_dir()
    if folder is None:
        return None
    spec = torch.load(folder / "inputs" / f"{probe}.pt", weights_only=True)
    device = spec.get("device", "cpu")
    results = [call_case(fn, case, device) for case in spec["cases"]]
    _write(probe, {"probe": probe, "results": results}, folder)
    return len(results)


def record_value(probe: str, value) -> int | None:
    """Save an answer (a string, a number, a list) for the judge; returns 1, or None outside grading."""
    folder = grading_dir()
    if folder is None:
        return None
    _write(probe, {"probe": probe, "results": [{"ok": True, "value": encode(value), "after": None}]}, folder)
    return 1

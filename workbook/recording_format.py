"""The recording format: how the grader's inputs and the student's results cross the sandbox as plain data.

Both files are written with `torch.save` and read back with `torch.load(weights_only=True)`, so they
hold only tensors, numbers, strings, lists and string-keyed dicts. Whatever else must cross (a tuple, a
single-pass iterator, a tensor's device, an object that is not data) becomes a marker dict
`{MARK: kind, ...}`. This module is the one place that writes and reads those markers, in both
directions; it lives in `workbook/` because the sandboxed kernel sees only this package.

Where the files lie is `workbook/grading_folder.py`'s.

Inputs (grader -> kernel), `inputs/<grade id>.pt`: `{"device": str, "cases": [{"args": [...],
"kwargs": {...}, "device"?: str}]}`. `encode_arg` keeps tensors as they are (on the CPU) and marks
tuples and one-shot iterators; `decode_arg` rebuilds them in the kernel with tensors on the device.

Results (kernel -> grader), `outputs/<grade id>.pt`: `{"grade_id": str, "results": [{"ok": bool,
"value" | "error_type", "error_mro", "error", "after"}]}`. `encode_value` marks tensors (copied to the
CPU as plain tensors, with the device they came back on) and tuples, and describes anything that is
not plain data; `decode_value` reads that back in the judge and raises `MalformedRecording` on a
structure `encode_value` never writes.
"""
from dataclasses import dataclass

import torch

__all__ = ["MARK", "TENSOR", "TUPLE", "ONE_SHOT", "UNSUPPORTED", "MALFORMED", "MalformedRecording",
           "RecordedTensor", "one_shot", "encode_arg", "decode_arg", "encode_value", "decode_value"]

MARK = "__workbook__"
TENSOR = "tensor"            # a returned tensor: {"data": CPU tensor, "device": str, "requires_grad": bool}
TUPLE = "tuple"              # {"items": [...]}, in both directions
ONE_SHOT = "one_shot"        # an argument delivered as a single-pass iterator over {"items": [...]}
UNSUPPORTED = "unsupported"  # a returned object that is not plain data: {"type": str, "repr": str}
MAX_DEPTH = 8                # nesting kept in a result; deeper values are described, not kept

# Said of a recording whose structure the recorder never writes: what went wrong, and what to do.
MALFORMED = ("the recording is malformed: the notebook changed what the recorder saved (damaged or forged). "
             "Leave `record`, `workbook.recording` and the grader's files alone, restart the kernel, run all "
             "cells and submit again")


class MalformedRecording(ValueError):
    """A recorded value that `encode_value` never writes; its message is `MALFORMED`."""

    def __init__(self):
        super().__init__(MALFORMED)


@dataclass(frozen=True)
class RecordedTensor:
    """A tensor the student's function returned, with the device it was returned on."""
    data: torch.Tensor
    device: str


def one_shot(items: list) -> dict:
    """An argument that reaches the student's function as a single-pass iterator over `items`."""
    return {MARK: ONE_SHOT, "items": list(items)}


def _marked(value, kind: str) -> bool:
    return isinstance(value, dict) and value.get(MARK) == kind


def encode_arg(value):
    """An argument as the inputs file holds it: tensors as they are, tuples and one-shot iterators marked."""
    if isinstance(value, tuple):
        return {MARK: TUPLE, "items": [encode_arg(v) for v in value]}
    if isinstance(value, list):
        return [encode_arg(v) for v in value]
    if _marked(value, ONE_SHOT):
        return one_shot([encode_arg(v) for v in value["items"]])
    if isinstance(value, dict):
        return {k: encode_arg(v) for k, v in value.items()}
    return value


def decode_arg(value, device: str):
    """An argument from an inputs file: tensors moved to `device`, markers made tuples and iterators."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if _marked(value, ONE_SHOT):
        return iter([decode_arg(v, device) for v in value["items"]])
    if _marked(value, TUPLE):
        return tuple(decode_arg(v, device) for v in value["items"])
    if isinstance(value, list):
        return [decode_arg(v, device) for v in value]
    if isinstance(value, dict):
        return {k: decode_arg(v, device) for k, v in value.items()}
    return value


def encode_value(value, depth: int = 0):
    """A returned value as plain data that `torch.load(weights_only=True)` accepts."""
    if depth > MAX_DEPTH:
        return {MARK: UNSUPPORTED, "type": "nested too deeply", "repr": ""}
    if isinstance(value, torch.Tensor):
        # Values are graded, not types: a subclass (fastai's TensorBase, a Parameter) is kept as a plain
        # tensor, which `torch.load(weights_only=True)` reads back.
        data = value.detach().as_subclass(torch.Tensor).to("cpu", copy=True)
        return {MARK: TENSOR, "data": data, "device": str(value.device), "requires_grad": bool(value.requires_grad)}
    if value is None or type(value) in (bool, int, float, str):
        return value
    if type(value) is tuple:
        return {MARK: TUPLE, "items": [encode_value(v, depth + 1) for v in value]}
    if type(value) is list:
        return [encode_value(v, depth + 1) for v in value]
    if type(value) is dict and all(type(k) is str for k in value):
        return {k: encode_value(v, depth + 1) for k, v in value.items()}
    # Anything else (numpy arrays, custom objects with a permissive __eq__, ...) is described, not kept.
    return {MARK: UNSUPPORTED, "type": f"{type(value).__module__}.{type(value).__qualname__}",
            "repr": _safe_repr(value)}


def _safe_repr(value) -> str:
    try:
        return repr(value)[:200]
    except Exception as e:  # a hostile __repr__ must not stop the recording
        return f"<repr failed: {type(e).__name__}>"


def decode_value(value):
    """A recorded value for the judge: tensors as `RecordedTensor`, tuples as tuples; an unsupported
    object stays its marker dict (the judge describes it). Raises MalformedRecording on anything else
    that carries a marker, or on a value that is not plain data."""
    if isinstance(value, dict) and MARK in value:
        kind = value[MARK]
        if kind == TENSOR and isinstance(value.get("data"), torch.Tensor) and isinstance(value.get("device"), str):
            return RecordedTensor(value["data"], value["device"])
        if kind == TUPLE and isinstance(value.get("items"), list):
            return tuple(decode_value(v) for v in value["items"])
        if kind == UNSUPPORTED:
            return {MARK: UNSUPPORTED, "type": str(value.get("type", "?")), "repr": str(value.get("repr", ""))}
        raise MalformedRecording()
    if isinstance(value, list):
        return [decode_value(v) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise MalformedRecording()
        return {k: decode_value(v) for k, v in value.items()}
    if value is None or type(value) in (bool, int, float, str):
        return value
    raise MalformedRecording()  # a bare tensor or any other object: the recorder writes neither

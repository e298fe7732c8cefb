"""The judge's building blocks: cases, comparisons of untrusted recordings, verdicts.

A recording comes from the student's kernel, so it is data to validate, never to trust: values
that are not plain tensors or numbers are refused, and every comparison is made here, in the
grader's process, against the reference package.
"""
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from workbook.checks import normal_answer
from workbook import variants
from workbook.recording_format import MALFORMED, MARK, UNSUPPORTED, RecordedTensor, decode_value

__all__ = ["Case", "RubricItem", "Verdict", "seed_for", "compare_tensor", "expect_error", "describe_received",
           "inputs_unchanged", "judge_tensors", "answer_in", "answer_equals", "tensor_arg_label", "fits_other_parameters"]


@dataclass(frozen=True)
class Case:
    """One call of the student's function.

    Args:
        args: positional arguments (tensors on the CPU; the recorder moves them to the device).
        kwargs: keyword arguments.
        label: how the feedback describes this input.
        raises: the exception types the call must raise, or None when it must return.
    """
    args: tuple
    kwargs: dict = field(default_factory=dict)
    label: str = ""
    raises: tuple | None = None


@dataclass(frozen=True)
class Verdict:
    """The judge's decision on one graded cell; `message` is shown to the student in feedback."""
    passed: bool
    message: str


@dataclass(frozen=True)
class RubricItem:
    """One item of the rubric: a graded behaviour, judged in the grader's process.

    Args:
        grade_id: the nbgrader grade cell id, also the name the recorder files the cell's inputs and results under.
        description: one sentence shown in feedback.
        make_cases: (generator) -> list of Case; inputs made by the grader, seeded per submission.
        judge_case: (case, expected, received, after, device) -> None when right, else a one-line
            reason; `after` holds the tensor arguments as they were after the call.
        expected: (case) -> the reference output for the case (not called for `raises` cases).
        value_answer: for answer cells (no function): judge(received) -> None or a reason; with
            `variant`, judge(received, params) with the student's parameters of that question.
        target: the exercise function the item calls ("" for answer cells).
        variant: the `workbook.variants` question whose per-student parameters the answer depends on.
        exercise: the exercise the cell grades, one column of the LMS gradebook (the function's name, or
            the answer cell's grade id); the cells of one exercise add up in that column.
    """
    grade_id: str
    description: str
    target: str = ""
    make_cases: Callable[[torch.Generator], list[Case]] | None = None
    expected: Callable[[Case], object] | None = None
    judge_case: Callable[..., str | None] | None = None
    value_answer: Callable[..., str | None] | None = None
    variant: str = ""
    exercise: str = ""


def seed_for(salt: str, student_id: str, grade_id: str) -> int:
    """A seed that differs per submission and per graded cell, and is stable across reruns."""
    digest = hashlib.sha256(f"{salt}\0{student_id}\0{grade_id}".encode()).hexdigest()
    return int(digest[:15], 16)


def fits_other_parameters(question: str, own: dict, fits: Callable[[dict], bool]) -> str | None:
    """When a wrong answer is right for another parameter set of `question`, a reason that says so.

    Args:
        question: a `workbook.variants` question.
        own: the student's parameters (the answer does not fit them).
        fits: (params) -> whether the answer is right for those parameters.
    """
    other = next((p for p in variants.space(question) if p != own and fits(p)), None)
    if other is None:
        return None
    printed = ", the printed example" if other in variants.EXAMPLES[question] else ""
    return (f"the answer fits other parameters ({variants.describe(other)}{printed}), not yours "
            f"({variants.describe(own)}); work it out for the numbers your notebook shows you")


def tensor_arg_label(name: str, x: torch.Tensor) -> str:
    return f"{name}: {str(x.dtype).removeprefix('torch.')} tensor of shape {list(x.shape)}"


def describe_received(value) -> str:
    if isinstance(value, RecordedTensor):
        return f"a tensor of shape {list(value.data.shape)} ({value.data.dtype}, {value.device})"
    if isinstance(value, dict) and value.get(MARK) == UNSUPPORTED:
        return f"an object of type {value.get('type')}"
    if isinstance(value, tuple):
        return f"a tuple of {len(value)}"
    return f"{type(value).__name__} {str(value)[:80]}"


def _short(t: torch.Tensor, n: int = 6) -> str:
    flat = t.detach().flatten().tolist()[:n]
    body = ", ".join(f"{v:.5g}" if isinstance(v, float) else str(v) for v in flat)
    return f"[{body}{', ...' if t.numel() > n else ''}]"


def compare_tensor(expected: torch.Tensor, received, what: str, *, device: str, rtol: float = 1e-4,
                   atol: float = 1e-5) -> str | None:
    """None when `received` is a tensor equal to `expected` (shape, dtype, device, values), else why not."""
    if not isinstance(received, RecordedTensor):
        return f"{what}: expected a tensor of shape {list(expected.shape)}, received {describe_received(received)}"
    got = received.data
    if list(got.shape) != list(expected.shape):
        return f"{what}: expected shape {list(expected.shape)}, received shape {list(got.shape)}"
    if got.dtype != expected.dtype:
        return f"{what}: expected dtype {expected.dtype} (the input's), received {got.dtype}"
    if received.device != device:
        return f"{what}: expected the result on the input's device {device}, received it on {received.device}"
    exp64, got64 = expected.to(torch.float64), got.to(torch.float64)
    if not torch.isfinite(got64).all() and not torch.equal(torch.isfinite(got64), torch.isfinite(exp64)):
        return f"{what}: received non-finite values {_short(got)}; expected {_short(expected)}"
    if not torch.allclose(got64, exp64, rtol=rtol, atol=atol):
        worst = int((got64 - exp64).abs().flatten().argmax())
        return (f"{what}: expected {_short(expected)}, received {_short(got)} "
                f"(largest difference at flat index {worst}: expected {exp64.flatten()[worst].item():.6g}, "
                f"received {got64.flatten()[worst].item():.6g})")
    return None


def expect_error(case: Case, result: dict) -> str | None:
    """For a case that must raise: None when the recorded call raised one of `case.raises`."""
    names = " or ".join(t.__name__ for t in case.raises)
    if result.get("ok"):
        return f"with {case.label}: expected {names}, but the function returned {describe_received(decode_value(result.get('value')))}"
    mro = result.get("error_mro") or []
    if not any(t.__name__ in mro for t in case.raises):
        return f"with {case.label}: expected {names}, but it raised {result.get('error_type')}: {result.get('error', '')[:120]}"
    return None


def inputs_unchanged(case: Case, after) -> str | None:
    """None when every tensor argument is unchanged after the call, else which one changed."""
    if not isinstance(after, dict):
        return None if after is None else MALFORMED
    for i, (before, now) in enumerate(zip(case.args, after.get("args", []))):
        if isinstance(before, torch.Tensor) and isinstance(now, RecordedTensor):
            if now.data.shape != before.shape or not torch.equal(now.data, before):
                return f"with {case.label}: argument {i + 1} was changed in place; return a new tensor instead"
    return None


def judge_tensors(*names: str, rtol: float = 1e-4, atol: float = 1e-5, unchanged: bool = True):
    """A `judge_case` comparing a tensor result (one name) or a tuple of tensors (several names)."""
    def judge_case(case: Case, expected, received, after, device: str) -> str | None:
        if len(names) == 1:
            expected, received = (expected,), (received,)
        elif not isinstance(received, tuple) or len(received) != len(names):
            return f"with {case.label}: expected a tuple ({', '.join(names)}), received {describe_received(received)}"
        for name, exp, got in zip(names, expected, received):
            reason = compare_tensor(exp, got, f"with {case.label}, {name}", device=device, rtol=rtol, atol=atol)
            if reason:
                return reason
        return inputs_unchanged(case, after) if unchanged else None
    return judge_case


def answer_in(accepted: set, options: list[str]):
    """A `value_answer` for a choice among `options` written out: the form is checked as the notebook's
    visible test checks it (`workbook.checks.expect_one_of`), then whether it is one of `accepted`."""
    right = {normal_answer(a) for a in accepted}
    valid = {normal_answer(o) for o in options}
    shown = ", ".join(f'"{o}"' for o in options)

    def value_answer(received) -> str | None:
        if not isinstance(received, str):
            return f"expected the answer as a string ({shown}), received {describe_received(received)}"
        if normal_answer(received) not in valid:
            return f"expected one of {shown}, received {received.strip()[:40]!r}"
        if normal_answer(received) not in right:
            return f"the answer {received.strip()!r} is not right"
        return None
    return value_answer


def answer_equals(expected, shown: str):
    """A `value_answer` that accepts exactly one number (int or float equal to it)."""
    def value_answer(received) -> str | None:
        if type(received) not in (int, float) or received != expected:
            return f"expected {shown}, the answer {describe_received(received)} is not right"
        return None
    return value_answer

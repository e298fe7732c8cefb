"""Phase 2 of grading: make the inputs of every rubric item, then judge what the sandbox recorded.

Runs in the grader's own process. The student's kernel only ever sees the inputs file; the expected
outputs come from `autograder.reference` here.
"""
import copy
import logging
from pathlib import Path

import torch

from autograder.rubric import REGISTRY, RubricItem, Case, Verdict
from autograder.rubric.core import expect_error
from autograder.safe_load import RecordingRefused, load_recording
from workbook import variants
from workbook.recording import call_case
from workbook.grading_folder import inputs_file, results_file
from workbook.recording_format import MALFORMED, MalformedRecording, decode_value, encode_arg, encode_value

__all__ = ["write_inputs", "judge", "judge_recording", "record_in_process", "NO_RECORDING"]

log = logging.getLogger(__name__)

REFUSED_ADVICE = ("not judged (damaged, forged or oversized). Return results of the size the exercise asks for, "
                  "leave the grader's files and the recorder alone, restart the kernel, run all cells and submit again")
NO_RECORDING = ("no recording reached the grader: the cell stopped before calling the recorder "
                "(an error earlier in the cell or notebook, a timeout, a crashed kernel, or an undefined function)")


CONTROLS = 2  # valid inputs added to an error-only rubric item: a function that always raises must not earn it


def _control_cases(item: RubricItem, seed: int) -> list[Case]:
    """Valid inputs for an error-only rubric item, taken from a value item of the same function."""
    for sibling in REGISTRY.values():
        if sibling.target == item.target and sibling.judge_case is not None and sibling.make_cases is not None:
            valid = [c for c in sibling.make_cases(torch.Generator().manual_seed(seed)) if c.raises is None]
            return [Case(args=c.args, kwargs=c.kwargs, label=f"{c.label} (a valid input)") for c in valid[:CONTROLS]]
    return []


def _cases(item: RubricItem, seed: int) -> list[Case]:
    if item.make_cases is None:
        return []
    generator = torch.Generator().manual_seed(seed)
    cases = item.make_cases(generator)
    if item.judge_case is None and cases and all(c.raises is not None for c in cases):
        cases = cases + _control_cases(item, seed)
    return cases


def write_inputs(item: RubricItem, seed: int, folder: Path, device: str = "cpu") -> list[Case]:
    """Write the inputs file of `item` for the recorder and return its cases."""
    cases = _cases(item, seed)
    if item.value_answer is not None:
        return cases
    payload = {"device": device, "cases": [encode_case(c) for c in cases]}
    path = inputs_file(folder, item.grade_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)
    return cases


def encode_case(case: Case) -> dict:
    """One case for the recorder. Bad-argument cases run on the CPU: on CUDA, a function without argument
    checks can index out of range, and the device-side assert that follows ends the kernel's CUDA context,
    failing every later graded cell of the notebook too."""
    encoded = {"args": [encode_arg(a) for a in case.args], "kwargs": {k: encode_arg(v) for k, v in case.kwargs.items()}}
    return {**encoded, "device": "cpu"} if case.raises is not None else encoded


def _load(path: Path):
    try:
        return load_recording(path), None
    except FileNotFoundError:
        return None, NO_RECORDING
    except RecordingRefused as e:  # a file the student's code wrote, damaged or made too large
        return None, f"{e}: {REFUSED_ADVICE}"


def _judge_answer(item: RubricItem, received, student: str) -> str | None:
    if item.variant:
        return item.value_answer(received, variants.parameters(item.variant, student))
    return item.value_answer(received)


def judge_recording(item: RubricItem, cases: list[Case], payload, device: str = "cpu",
                    student: str = variants.FIXED_ID) -> Verdict:
    """Judge one rubric item from its recorded payload (already loaded, untrusted); `student` picks the
    parameters of a per-student answer."""
    try:
        return _judge_payload(item, cases, payload, device, student)
    except MalformedRecording:
        return Verdict(False, MALFORMED)


def _judge_payload(item: RubricItem, cases: list[Case], payload, device: str, student: str) -> Verdict:
    if not isinstance(payload, dict) or not isinstance(payload.get("results"), list):
        return Verdict(False, MALFORMED)
    results = payload["results"]
    if item.value_answer is not None:
        if len(results) != 1 or not isinstance(results[0], dict):
            return Verdict(False, MALFORMED)
        reason = _judge_answer(item, decode_value(results[0].get("value")), student)
        return Verdict(reason is None, reason or f"passed: {item.description}")
    if len(results) != len(cases):
        return Verdict(False, f"the recording has {len(results)} results for {len(cases)} inputs; {MALFORMED}")
    for case, result in zip(cases, results):
        if not isinstance(result, dict):
            return Verdict(False, MALFORMED)
        if case.raises is not None:
            reason = expect_error(case, result)
        elif not result.get("ok"):
            reason = f"with {case.label}: the function raised {result.get('error_type')}: {str(result.get('error', ''))[:160]}"
            if item.judge_case is None:
                reason += "; raise only for bad arguments"
        elif item.judge_case is None:
            reason = None       # a control case of an error-only item: returning is all it asks
        else:
            reason = item.judge_case(case, item.expected(case), decode_value(result.get("value")),
                                      decode_value(result.get("after")), device)
        if reason is not None:
            return Verdict(False, reason)
    return Verdict(True, f"passed: {item.description} ({len(cases)} inputs)")


def record_in_process(item: RubricItem, fn, seed: int, device: str = "cpu", student: str = variants.FIXED_ID) -> Verdict:
    """Judge `fn` directly, without a notebook: the recorder's own calling code, in this process.

    For fast tests of function-level mutants; grading always goes through the sandbox.
    """
    cases = _cases(item, seed)
    if item.value_answer is not None:
        payload = {"results": [{"ok": True, "value": encode_value(fn), "after": None}]}
    else:
        # Copies, as the sandbox's inputs file gives: a function that changes its arguments in place
        # must not change the cases the judge compares with.
        payload = {"results": [call_case(fn, copy.deepcopy(encode_case(c)), device) for c in cases]}
    return judge_recording(item, cases, payload, device, student)


def judge(grade_id: str, cases: list[Case], folder: Path, device: str = "cpu",
          student: str = variants.FIXED_ID) -> Verdict:
    """Judge the rubric item `grade_id` from the outputs recorded under `folder`."""
    item = REGISTRY.get(grade_id)
    if item is None:
        return Verdict(False, f"no rubric item is defined for grade cell {grade_id!r} (instructor: add one to autograder.rubric)")
    payload, error = _load(results_file(folder, grade_id))
    if error:
        return Verdict(False, error)
    try:
        return judge_recording(item, cases, payload, device, student)
    except Exception as e:  # an untrusted value no rubric item expects must not stop the student's other cells
        log.exception("judging %s failed", grade_id)
        return Verdict(False, f"the recording could not be judged ({type(e).__name__}): {REFUSED_ADVICE}")

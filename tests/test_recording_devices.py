"""Where the recorder calls the student's function: on the grader's device, except bad-argument cases."""
import pytest
import torch

from autograder.rubric import Case
from autograder.judge import encode_case
from workbook.recording import call_case


def _device_of(x):
    return str(x.device)


def test_bad_argument_cases_run_on_the_cpu_and_the_others_on_the_grading_device():
    x = torch.zeros(2, 3)
    valid, bad = encode_case(Case(args=(x,))), encode_case(Case(args=(x,), raises=(ValueError,)))
    assert "device" not in valid and bad["device"] == "cpu"
    # A grading device that exists nowhere: only the case that names the CPU can run.
    assert call_case(_device_of, bad, "cuda:99")["value"] == "cpu"
    with pytest.raises((RuntimeError, AssertionError)):
        call_case(_device_of, valid, "cuda:99")

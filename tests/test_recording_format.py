"""The recording format both ways: every kind of value survives grader -> file -> kernel and
kernel -> file -> judge, and a structure the recorder never writes is judged MALFORMED."""
import io

import pytest
import torch

from autograder.rubric import REGISTRY, Case
from autograder.judge import judge_recording
from autograder.safe_load import load_recording
from workbook.recording import call_case
from workbook.recording_format import (MALFORMED, MARK, UNSUPPORTED, MalformedRecording, RecordedTensor, decode_arg,
                                       decode_value, encode_arg, encode_value, one_shot)

DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.uint8, torch.int8, torch.int16,
          torch.int32, torch.int64, torch.bool, torch.complex64]


def _through_file(payload, tmp_path=None):
    """What the other side reads: torch.save, then the loader that side uses."""
    if tmp_path is not None:  # the judge's bounded loader
        path = tmp_path / "recording.pt"
        torch.save(payload, path)
        return load_recording(path)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)


def _tensor(dtype: torch.dtype) -> torch.Tensor:
    base = torch.tensor([[0.0, 1.5, -2.25], [3.0, 250.0, 7.0]])
    if dtype == torch.bool:
        return base > 1
    if dtype == torch.uint8:
        return base.abs().to(dtype)
    return base.to(dtype)


def _same(a, b) -> bool:
    """Structural equality that tells a tuple from a list and compares tensors exactly, dtype included."""
    if isinstance(a, torch.Tensor):
        return type(b) is torch.Tensor and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, RecordedTensor):
        return isinstance(b, RecordedTensor) and a.device == b.device and _same(a.data, b.data)
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


# ----------------------------------------------------------------------------------------- inputs

@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_a_tensor_argument_arrives_with_its_dtype_and_values(dtype):
    x = _tensor(dtype)
    received = decode_arg(_through_file(encode_arg(x)), "cpu")
    assert _same(x, received)


def test_containers_and_scalars_arrive_as_they_were_sent():
    value = (torch.ones(2), [1, 2.5, "text", None, True, (3, [torch.zeros(1, dtype=torch.float16)])],
             {"k": (torch.arange(3), {"nested": [None, False]})})
    received = decode_arg(_through_file(encode_arg(value)), "cpu")
    assert _same(value, received)


def test_a_one_shot_argument_arrives_as_a_single_pass_iterator():
    items = [torch.full((1, 2), float(i)) for i in range(3)]
    received = decode_arg(_through_file(encode_arg((one_shot(items), 7))), "cpu")
    iterator, seven = received
    assert seven == 7 and iter(iterator) is iterator
    assert _same(items, list(iterator)) and list(iterator) == []


def test_a_case_reaches_the_function_as_the_grader_made_it():
    x = torch.arange(6.0).reshape(2, 3)
    case = {"args": encode_arg((x, (1, 2))), "kwargs": encode_arg({"scale": 0.5, "parts": [x]})}
    seen = {}

    def spy(*args, **kwargs):
        seen.update(args=args, kwargs=kwargs)
        return None
    call_case(spy, _through_file(case), "cpu")
    assert _same((x, (1, 2)), seen["args"]) and _same({"scale": 0.5, "parts": [x]}, seen["kwargs"])


# ---------------------------------------------------------------------------------------- results

@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_a_returned_tensor_reaches_the_judge_with_dtype_values_and_device(dtype, tmp_path):
    x = _tensor(dtype)
    received = decode_value(load_recording_of(encode_value(x), tmp_path))
    assert _same(RecordedTensor(x, "cpu"), received)


def load_recording_of(value, tmp_path):
    return _through_file({"results": [{"ok": True, "value": value}]}, tmp_path)["results"][0]["value"]


def test_tensor_subclasses_and_parameters_are_recorded_as_plain_tensors(tmp_path):
    from fastai.torch_core import TensorBase, TensorImage
    sent = (TensorImage(torch.ones(2, 3)), TensorBase(torch.arange(3.0)), torch.nn.Parameter(torch.zeros(2)))
    received = decode_value(load_recording_of(encode_value(sent), tmp_path))
    assert _same(tuple(RecordedTensor(t.detach().as_subclass(torch.Tensor), "cpu") for t in sent), received)
    assert all(type(r.data) is torch.Tensor for r in received)


def test_containers_and_scalars_reach_the_judge_as_they_were_returned(tmp_path):
    value = [None, True, 3, -2.5, "text", (1, (2, [3])), {"mean": torch.ones(2), "labels": ["a", "b"]}]
    received = decode_value(load_recording_of(encode_value(value), tmp_path))
    expected = [None, True, 3, -2.5, "text", (1, (2, [3])), {"mean": RecordedTensor(torch.ones(2), "cpu"),
                                                             "labels": ["a", "b"]}]
    assert _same(expected, received)


def test_objects_that_are_not_plain_data_are_described_not_kept(tmp_path):
    class Sneaky:
        def __eq__(self, other):
            return True

        def __repr__(self):
            raise RuntimeError("no")
    import numpy as np
    received = decode_value(load_recording_of(encode_value([np.zeros(2), Sneaky(), {1: "int key"}, iter([1])]), tmp_path))
    assert [r[MARK] for r in received] == [UNSUPPORTED] * 4
    assert received[0]["type"] == "numpy.ndarray" and received[1]["repr"] == "<repr failed: RuntimeError>"
    assert received[2]["type"] == "builtins.dict"


def test_values_nested_too_deeply_are_described():
    value = 1
    for _ in range(12):
        value = [value]
    encoded = encode_value(value)
    for _ in range(9):
        encoded = encoded[0]
    assert encoded == {MARK: UNSUPPORTED, "type": "nested too deeply", "repr": ""}


def test_an_error_is_recorded_with_its_type_ancestry_message_and_the_arguments_after(tmp_path):
    def fails(x):
        x.add_(1)
        raise KeyError("missing channel")
    x = torch.zeros(2)
    case = _through_file({"args": encode_arg((x,))})
    result = _through_file({"results": [call_case(fails, case, "cpu")]}, tmp_path)["results"][0]
    assert result["ok"] is False and result["error_type"] == "KeyError"
    assert result["error_mro"] == ["KeyError", "LookupError", "Exception", "BaseException", "object"]
    assert result["error"] == "'missing channel'"
    assert _same({"args": [RecordedTensor(torch.ones(2), "cpu")], "kwargs": {}}, decode_value(result["after"]))
    assert torch.equal(x, torch.zeros(2))  # the grader's own argument is untouched: the kernel got a copy


# -------------------------------------------------------------------------------------- malformed

FORGED = [
    {MARK: "tensor", "data": [1, 2], "device": "cpu"},   # a tensor marker without a tensor
    {MARK: "tensor", "data": torch.ones(1)},             # ... without its device
    {MARK: "tuple", "items": "ab"},                      # a tuple marker without a list
    {MARK: "pickle", "payload": "x"},                    # a kind the format does not have
    torch.ones(3),                                       # a bare tensor: the recorder always marks one
    (1, 2),                                              # a bare tuple: likewise
    [1, {MARK: "tuple"}],                                # malformed inside a list
]


@pytest.mark.parametrize("value", FORGED, ids=range(len(FORGED)))
def test_a_structure_the_recorder_never_writes_is_malformed(value):
    with pytest.raises(MalformedRecording) as raised:
        decode_value(value)
    assert str(raised.value) == MALFORMED


@pytest.mark.parametrize("value", FORGED, ids=range(len(FORGED)))
def test_the_judge_gives_the_malformed_message_for_a_forged_value(value):
    check = REGISTRY["fastai_setup_batches"]
    verdict = judge_recording(check, [], {"results": [{"ok": True, "value": value}]})
    assert not verdict.passed and verdict.message == MALFORMED


@pytest.mark.parametrize("payload", [None, [], {"results": "x"}, {"results": [1]}, {"results": [{}, {}]}],
                         ids=["none", "list", "results-not-a-list", "result-not-a-dict", "two-answers"])
def test_the_judge_gives_the_malformed_message_for_a_forged_payload(payload):
    verdict = judge_recording(REGISTRY["fastai_setup_batches"], [], payload)
    assert not verdict.passed and verdict.message == MALFORMED


def test_a_forged_value_in_a_function_check_is_malformed_too():
    case = Case(args=(torch.ones(1, 3, 2, 2),), label="x")
    result = {"ok": True, "value": {MARK: "tensor", "data": "forged"}, "after": None}
    verdict = judge_recording(REGISTRY["channel_stats_values"], [case], {"results": [result]})
    assert not verdict.passed and verdict.message == MALFORMED

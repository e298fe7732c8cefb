"""Rubric items of the test-time augmentation notebook (04_test_time_augmentation).

`five_crop_tta` takes a model, and a recording can only carry plain data. So its hidden test cells
record ``lambda weights, x, size: run_probe(five_crop_tta, weights, x, size)``: the kernel builds a
small probe model from grader-made weights (workbook.probes), calls the student's function with it,
and returns its output, whether that output needs gradients, and the training flags the model was
left with. Here the judge builds the identical probe from the same weights and calls the reference.
The rubric items of `five_crop_tta` therefore name `PROBE_TARGET` as their target, the function that the
recorder really calls; tests/test_reference_tta.py checks the reference through that same wrapper.

Limit: the probabilities are recomputed and compared here, but the training flags and the
requires_grad bit are *reported* by `run_probe` inside the student's kernel. A submission that
replaces `workbook.probes.run_probe` before the hidden cell runs could misreport those two (the
`five_crop_tta_mode` and `five_crop_tta_no_grad` points); it cannot fake the values without
computing them.
"""
import torch

from autograder.rubric.core import (Case, RubricItem, answer_equals, answer_in, compare_tensor, describe_received,
                                    fits_other_parameters, inputs_unchanged, judge_tensors, tensor_arg_label)
from autograder.reference import tta as ref
from workbook.probes import build_probe_model, probe_weights
from workbook.recording_format import MALFORMED

__all__ = ["ITEMS", "PROBE_TARGET"]

PROBE_TARGET = "five_crop_tta, called on a probe model by workbook.probes.run_probe"


def _images(g: torch.Generator, shape, dtype=torch.float32) -> torch.Tensor:
    if dtype == torch.uint8:
        return torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)
    return torch.rand(shape, generator=g, dtype=torch.float64).to(dtype)


def _crop_case(x: torch.Tensor, size, **kw) -> Case:
    return Case(args=(x, size), label=f"{tensor_arg_label('x', x)}, size={size!r}", **kw)


def five_crop_value_cases(g: torch.Generator) -> list[Case]:
    # Centre offsets (H - h) / 2 with remainders .0 and .5, both parities of the integer part: torchvision
    # rounds ties to even (0.5 -> 0, 1.5 -> 2, 2.5 -> 2, 3.5 -> 4), so flooring and rounding up both fail somewhere.
    specs = [([2, 3, 9, 9], 5, torch.float32),            # offsets 2, 2
             ([3, 3, 10, 13], 7, torch.float32),          # offsets 1.5 -> 2, 3
             ([1, 3, 12, 8], (5, 3), torch.float32),      # offsets 3.5 -> 4, 2.5 -> 2
             ([2, 1, 6, 11], (6, 10), torch.float32),     # offsets 0, 0.5 -> 0
             ([1, 2, 7, 7], [4, 4], torch.float64),       # offsets 1.5 -> 2, as a list
             ([2, 3, 9, 11], 4, torch.uint8),             # offsets 2.5 -> 2, 3.5 -> 4
             ([2, 3, 8, 8], 8, torch.float32)]            # the crop is the whole image
    return [_crop_case(_images(g, shape, dtype), size) for shape, size, dtype in specs]


def five_crop_error_cases(g: torch.Generator) -> list[Case]:
    return [
        _crop_case(_images(g, [1, 3, 6, 8]), (7, 4), raises=(ValueError,)),
        _crop_case(_images(g, [2, 3, 8, 6]), 7, raises=(ValueError,)),
        _crop_case(_images(g, [3, 8, 8]), 4, raises=(ValueError,)),
        _crop_case(_images(g, [1, 3, 8, 8]), 0, raises=(ValueError,)),
    ]


def _probe_case(g: torch.Generator, n: int, channels: int, height: int, width: int, size, *, n_classes: int = 5,
                dtype=torch.float32, training: bool = True, fail: bool = False) -> Case:
    weights = probe_weights(g, in_channels=channels, n_classes=n_classes, dtype=dtype, training=training, fail=fail)
    x = _images(g, [n, channels, height, width], dtype)
    mode = "training" if training else "eval"
    failing = ", a model that raises while predicting" if fail else ""
    label = (f"{tensor_arg_label('x', x)}, size={size!r}, a probe model with {n_classes} classes "
             f"in {mode} mode{failing}")
    return Case(args=(weights, x, size), label=label)


def tta_value_cases(g: torch.Generator) -> list[Case]:
    return [
        _probe_case(g, 4, 3, 12, 12, 8),
        _probe_case(g, 3, 3, 11, 14, (8, 9), n_classes=7),
        _probe_case(g, 2, 1, 10, 10, 7, n_classes=3, dtype=torch.float64),
        _probe_case(g, 3, 3, 12, 10, 8, training=False),
    ]


def tta_mode_cases(g: torch.Generator) -> list[Case]:
    return [
        _probe_case(g, 2, 3, 10, 10, 8, training=True),
        _probe_case(g, 2, 3, 10, 10, 8, training=False),
        _probe_case(g, 2, 3, 10, 10, 8, training=True, fail=True),
    ]


def tta_grad_cases(g: torch.Generator) -> list[Case]:
    return [_probe_case(g, 2, 3, 10, 10, 8), _probe_case(g, 2, 3, 10, 10, 8, training=False)]


def _expected_probe(case: Case) -> dict:
    weights, x, size = case.args
    model = build_probe_model(weights)
    return {"output": None if weights["fail"] else ref.five_crop_tta(model, x, size),
            "training": [weights["training"]] * len(list(model.modules()))}


def _probe_report(case: Case, received) -> tuple[dict | None, str | None]:
    if not isinstance(received, dict) or not {"output", "requires_grad", "training"} <= set(received):
        return None, f"with {case.label}: {MALFORMED}"
    return received, None


def judge_tta_values(case: Case, expected, received, after, device: str) -> str | None:
    report, reason = _probe_report(case, received)
    if reason:
        return reason
    reason = compare_tensor(expected["output"], report["output"], f"with {case.label}, probabilities",
                            device=device, rtol=1e-4, atol=1e-6)
    return reason or inputs_unchanged(case, after)


def judge_tta_mode(case: Case, expected, received, after, device: str) -> str | None:
    report, reason = _probe_report(case, received)
    if reason:
        return reason
    flags, want = report["training"], expected["training"]
    if flags != want:
        start = "training" if want[0] else "eval"
        if not isinstance(flags, list) or not all(isinstance(f, bool) for f in flags):
            return f"with {case.label}: {MALFORMED}"
        changed = sum(f != want[0] for f in flags)
        return (f"with {case.label}: the model started in {start} mode, but afterwards {changed} of its "
                f"{len(flags)} modules had training={not want[0]}; put every module back as it was "
                f"(model.train(was_training)), also when the model raises")
    return None


def judge_tta_grad(case: Case, expected, received, after, device: str) -> str | None:
    report, reason = _probe_report(case, received)
    if reason:
        return reason
    if report["requires_grad"] is not False:
        got = describe_received(report["output"])
        return (f"with {case.label}: the probabilities are attached to autograd (requires_grad="
                f"{report['requires_grad']}, received {got}); predict inside torch.no_grad()")
    return None


def crop_corners(params: dict) -> list[tuple[int, int]]:
    """(row, column) of the top-left pixel of the five crops of `params`, in five_crop's order."""
    h, w, size = params["height"], params["width"], params["size"]
    bottom, right = h - size, w - size
    return [(0, 0), (0, right), (bottom, 0), (bottom, right), (round(bottom / 2), round(right / 2))]


def _as_pairs(received) -> list[tuple] | None:
    if isinstance(received, (list, tuple)) and all(
            isinstance(p, (list, tuple)) and len(p) == 2 and all(type(v) is int for v in p) for p in received):
        return [tuple(p) for p in received]
    return None


def my_crop_corners_answer(received, params: dict) -> str | None:
    """Judge where the student's own five crops start (workbook.variants "crop")."""
    pairs = _as_pairs(received)
    if pairs is None:
        return f"expected five (row, column) pairs of ints, received {describe_received(received)}"
    expected = crop_corners(params)
    if pairs == expected:
        return None
    copied = fits_other_parameters("crop", params, lambda other: crop_corners(other) == pairs)
    if copied:
        return copied
    names = ("top-left", "top-right", "bottom-left", "bottom-right", "centre")
    wrong = [f"the {name} crop starts at {want}, not {got}" for name, want, got in zip(names, expected, pairs) if want != got]
    if len(pairs) != 5:
        wrong.insert(0, f"expected five pairs, received {len(pairs)}")
    return "; ".join(wrong)


ITEMS = [
    RubricItem("five_crop_values", "five_crop returns the corner and centre crops in torchvision's order and rounding",
          "five_crop", make_cases=five_crop_value_cases, expected=lambda c: ref.five_crop(*c.args),
          judge_case=judge_tensors("crops", rtol=0, atol=0), exercise="five_crop"),
    RubricItem("five_crop_errors", "five_crop rejects crops that do not fit in the images and non-batch tensors",
          "five_crop", make_cases=five_crop_error_cases, exercise="five_crop"),
    RubricItem("five_crop_tta_values", "five_crop_tta averages the eval-mode class probabilities of the five crops",
          PROBE_TARGET, make_cases=tta_value_cases, expected=_expected_probe, judge_case=judge_tta_values,
          exercise="five_crop_tta"),
    RubricItem("five_crop_tta_mode", "five_crop_tta leaves every module's training flag as it found it, "
          "also when the model raises", PROBE_TARGET, make_cases=tta_mode_cases, expected=_expected_probe,
          judge_case=judge_tta_mode, exercise="five_crop_tta"),
    RubricItem("five_crop_tta_no_grad", "five_crop_tta predicts without building an autograd graph",
          PROBE_TARGET, make_cases=tta_grad_cases, expected=_expected_probe, judge_case=judge_tta_grad,
          exercise="five_crop_tta"),
    RubricItem("my_crop_corners", "my_crop_corners holds where each of your five crops starts, the centre rounded "
          "like torchvision (half to even)", value_answer=my_crop_corners_answer, variant="crop",
          exercise="my_crop_corners"),
    RubricItem("fastai_tta_passes", "learn.tta() with its defaults makes 5 passes over the data: 4 augmented, 1 plain",
          value_answer=answer_equals(5, "a number of passes"), exercise="fastai_tta_passes"),
    RubricItem("tta_speed", "test-time augmentation is slower than plain inference (one forward pass per version)",
          value_answer=answer_in({"slower"}, ["slower", "faster"]), exercise="tta_speed"),
]

"""Rubric items of the label smoothing notebook (06_label_smoothing)."""
import math

import torch

from autograder.rubric.core import (Case, RubricItem, describe_received, fits_other_parameters, judge_tensors,
                                    tensor_arg_label)
from autograder.reference import label_smoothing as ref
from workbook.recording_format import RecordedTensor



def _labels(g: torch.Generator, n: int, k: int, dtype=torch.int64) -> torch.Tensor:
    return torch.randint(0, k, (n,), generator=g).to(dtype)


def _logits(g: torch.Generator, n: int, k: int, dtype=torch.float32, scale: float = 3.0) -> torch.Tensor:
    return (torch.randn(n, k, generator=g, dtype=torch.float64) * scale).to(dtype)


def _targets_case(y: torch.Tensor, k: int, eps: float, **kwargs) -> Case:
    extra = "".join(f", {name}={value}" for name, value in kwargs.items())
    return Case(args=(y, k, eps), kwargs=kwargs, label=f"{tensor_arg_label('y', y)}, n_classes={k}, eps={eps}{extra}")


def targets_value_cases(g: torch.Generator) -> list[Case]:
    return [
        _targets_case(torch.tensor([1]), 5, 0.1),
        _targets_case(_labels(g, 8, 10), 10, 0.1),
        _targets_case(_labels(g, 6, 3), 3, 0.25),
        _targets_case(_labels(g, 5, 4, torch.int32), 4, 0.2),
        _targets_case(_labels(g, 4, 2), 2, 0.0),
        _targets_case(_labels(g, 3, 1000), 1000, 0.05),
        _targets_case(_labels(g, 6, 7), 7, 0.3, dtype=torch.float64),
        # eps = 0 crossed with the other option (dtype), and a single class (every target is 1).
        _targets_case(_labels(g, 5, 3), 3, 0.0, dtype=torch.float64),
        _targets_case(_labels(g, 3, 1), 1, 0.2),
    ]


def targets_error_cases(g: torch.Generator) -> list[Case]:
    y = _labels(g, 4, 5)
    return [
        Case(args=(y, 5, 1.0), label=f"{tensor_arg_label('y', y)}, eps=1.0", raises=(ValueError,)),
        Case(args=(y, 5, -0.1), label=f"{tensor_arg_label('y', y)}, eps=-0.1", raises=(ValueError,)),
        Case(args=(torch.tensor([0, 5, 2]), 5, 0.1), label="y = [0, 5, 2] with n_classes=5 (index 5 is out of range)",
             raises=(ValueError,)),
        Case(args=(torch.tensor([-1, 2]), 5, 0.1), label="y = [-1, 2] (a negative index)", raises=(ValueError,)),
        Case(args=(torch.tensor([1.0, 2.0]), 5, 0.1), label="y = [1.0, 2.0], float labels", raises=(TypeError,)),
    ]


def _loss_case(logits: torch.Tensor, y: torch.Tensor, eps: float, **kwargs) -> Case:
    extra = "".join(f", {name}={value!r}" for name, value in kwargs.items())
    return Case(args=(logits, y, eps), kwargs=kwargs,
                label=f"{tensor_arg_label('logits', logits)}, {tensor_arg_label('y', y)}, eps={eps}{extra}")


def loss_value_cases(g: torch.Generator) -> list[Case]:
    cases = []
    for n, k, eps, dtype in ((16, 10, 0.1, torch.float32), (8, 5, 0.1, torch.float64), (12, 3, 0.25, torch.float32),
                             (6, 10, 0.0, torch.float32), (4, 1000, 0.1, torch.float32), (9, 7, 0.4, torch.float64)):
        cases.append(_loss_case(_logits(g, n, k, dtype), _labels(g, n, k), eps))
    return cases


def loss_reduction_cases(g: torch.Generator) -> list[Case]:
    cases = []
    # eps = 0 (plain cross-entropy) with every reduction: a shortcut for eps = 0 must still reduce as asked.
    for n, k, eps, reduction in ((8, 10, 0.1, "none"), (8, 10, 0.1, "sum"), (5, 4, 0.3, "none"),
                                 (6, 6, 0.2, "sum"), (7, 5, 0.1, "mean"), (6, 4, 0.0, "none"),
                                 (5, 3, 0.0, "sum"), (4, 6, 0.0, "mean")):
        cases.append(_loss_case(_logits(g, n, k), _labels(g, n, k), eps, reduction=reduction))
    return cases


def loss_large_logit_cases(g: torch.Generator) -> list[Case]:
    # exp(100) overflows no float32, but softmax of logits 200 apart underflows to exactly 0, so
    # log(softmax(x)) is -inf where log_softmax(x) is a finite number.
    return [_loss_case(_logits(g, 8, 10, scale=100.0), _labels(g, 8, 10), 0.1),
            _loss_case(_logits(g, 6, 5, scale=300.0, dtype=torch.float64), _labels(g, 6, 5), 0.2)]


def loss_error_cases(g: torch.Generator) -> list[Case]:
    logits, y = _logits(g, 4, 5), _labels(g, 4, 5)
    label = f"{tensor_arg_label('logits', logits)}, {tensor_arg_label('y', y)}"
    return [
        Case(args=(logits, y, 1.0), label=f"{label}, eps=1.0", raises=(ValueError,)),
        Case(args=(logits, y, -0.2), label=f"{label}, eps=-0.2", raises=(ValueError,)),
        Case(args=(logits, torch.tensor([0, 1, 5, 2]), 0.1), label=f"{tensor_arg_label('logits', logits)}, y = [0, 1, 5, 2] "
             "(index 5 is out of range for 5 classes)", raises=(ValueError,)),
        Case(args=(logits, y.float(), 0.1), label=f"{tensor_arg_label('logits', logits)}, float labels y", raises=(TypeError,)),
        Case(args=(logits, _labels(g, 3, 5), 0.1), label=f"{tensor_arg_label('logits', logits)}, 3 labels for 4 rows",
             raises=(ValueError,)),
    ]


def _expected_targets(case: Case):
    return ref.smooth_targets(*case.args, **case.kwargs)


def _expected_loss(case: Case):
    return ref.label_smoothing_ce(*case.args, **case.kwargs)


def _as_numbers(received) -> list[float] | None:
    """The answer as a list of floats: a list or tuple of numbers, or a 1-D tensor; None otherwise."""
    if isinstance(received, RecordedTensor):
        data = received.data
        if data.ndim == 2 and data.shape[0] == 1:     # a [1, K] batch of one row is the same answer
            data = data[0]
        return [float(v) for v in data.tolist()] if data.ndim == 1 and data.is_floating_point() else None
    if isinstance(received, (list, tuple)) and all(type(v) in (int, float) for v in received):
        return [float(v) for v in received]
    return None


def q13_target(params: dict) -> list[float]:
    """The smoothed target of `params["index"]` with its number of classes and eps (eps/K off)."""
    k, eps, index = params["n_classes"], params["eps"], params["index"]
    return [eps / k + (1 - eps) * (i == index) for i in range(k)]


def _fits(numbers: list[float], params: dict) -> bool:
    target = q13_target(params)
    return len(numbers) == len(target) and all(math.isclose(a, b, abs_tol=1e-6) for a, b in zip(numbers, target))


def q13_answer(received, params: dict) -> str | None:
    """Judge the Q13 target against the student's own parameters (workbook.variants "q13"); the reasons
    name the part of a wrong answer that is wrong, or the other parameters it was worked out for."""
    k, eps, index = params["n_classes"], params["eps"], params["index"]
    numbers = _as_numbers(received)
    if numbers is None:
        return f"expected {k} numbers (a list of floats), received {describe_received(received)}"
    if _fits(numbers, params):
        return None
    copied = fits_other_parameters("q13", params, lambda other: _fits(numbers, other))
    if len(numbers) != k:
        return copied or f"expected one number per category ({k}), received {len(numbers)}"
    reasons = []
    top = max(range(len(numbers)), key=numbers.__getitem__)
    if top != index:
        reasons.append(f"the largest value is at index {top}; the target class is index {index} (indices start at 0)")
    if not math.isclose(sum(numbers), 1.0, abs_tol=1e-6):
        reasons.append(f"the values sum to {sum(numbers):.4g}, a target distribution sums to 1")
    off = [v for i, v in enumerate(numbers) if i != top]
    if k != 10 and all(math.isclose(v, eps / 10, abs_tol=1e-9) for v in off):
        reasons.append(f"{eps / 10:g} is eps/10, the off-value of a ten-class example; here there are {k} classes")
    elif k > 1 and all(math.isclose(v, eps / (k - 1), abs_tol=1e-9) for v in off):
        reasons.append(f"{eps / (k - 1):.4g} is eps/(K-1), the other convention (1 - eps on, eps/(K-1) off); this "
                       "notebook, the paper, torch and fastai use eps/K")
    elif all(v == 0 for v in off):
        reasons.append("this is the one-hot target, without smoothing")
    if copied:
        return copied + (f" ({'; '.join(reasons)})" if reasons else "")
    return "the target is not right" + (": " + "; ".join(reasons) if reasons else "")


ITEMS = [
    RubricItem("smooth_targets_values", "smooth_targets puts eps/K on every class and 1 - eps + eps/K on the true one",
          "smooth_targets", make_cases=targets_value_cases, expected=_expected_targets,
          judge_case=judge_tensors("targets", rtol=1e-6, atol=1e-7), exercise="smooth_targets"),
    RubricItem("smooth_targets_errors", "smooth_targets rejects eps outside [0, 1) and labels that are not valid class indices",
          "smooth_targets", make_cases=targets_error_cases, exercise="smooth_targets"),
    RubricItem("label_smoothing_ce_values", "label_smoothing_ce equals cross-entropy against the smoothed targets",
          "label_smoothing_ce", make_cases=loss_value_cases, expected=_expected_loss,
          judge_case=judge_tensors("loss", rtol=1e-5, atol=1e-6), exercise="label_smoothing_ce"),
    RubricItem("label_smoothing_ce_reductions", "label_smoothing_ce reduces like torch: 'mean', 'sum' or 'none'",
          "label_smoothing_ce", make_cases=loss_reduction_cases, expected=_expected_loss,
          judge_case=judge_tensors("loss", rtol=1e-5, atol=1e-6), exercise="label_smoothing_ce"),
    RubricItem("label_smoothing_ce_large_logits", "label_smoothing_ce stays finite and right when logits are large",
          "label_smoothing_ce", make_cases=loss_large_logit_cases, expected=_expected_loss,
          judge_case=judge_tensors("loss", rtol=1e-5, atol=1e-4), exercise="label_smoothing_ce"),
    RubricItem("label_smoothing_ce_errors", "label_smoothing_ce rejects a bad eps, labels out of range, float labels "
          "and a label count that does not match the logits", "label_smoothing_ce", make_cases=loss_error_cases,
          exercise="label_smoothing_ce"),
    RubricItem("q13_target", "the smoothed target of your index is eps/K on every class and 1 - eps + eps/K on "
          "that index, for your number of classes K and eps", value_answer=q13_answer, variant="q13",
          exercise="q13_target"),
]

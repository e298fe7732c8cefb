"""Reference solutions of the label smoothing exercises.

Label smoothing (Szegedy et al., 2016, "Rethinking the Inception Architecture for Computer Vision",
section 7) replaces the one-hot target of a sample of class y by

    q'(k) = (1 - eps) * [k == y] + eps / K        (K classes, 0 <= eps < 1),

so the true class gets 1 - eps + eps/K and every other class eps/K (the paper's u(k) = 1/K). The
cross-entropy against q' splits into two terms, which is how both functions below are written:

    H(q', p) = -sum_k q'(k) log p(k) = (1 - eps) * (-log p(y)) + eps * mean_k(-log p(k)).

torch's `F.cross_entropy(..., label_smoothing=eps)` and fastai's `LabelSmoothingCrossEntropy(eps)`
compute this same quantity (they differ only when class weights are given). The other convention in
the literature (eps/(K-1) on the wrong classes, 1 - eps on the true one, e.g. He et al., 2019, "Bag of
Tricks for Image Classification", section 5.2) is a different target and is not what these compute.
"""
import math
from numbers import Integral, Real

import torch
import torch.nn.functional as F

__all__ = ["smooth_targets", "label_smoothing_ce"]

REDUCTIONS = ("mean", "sum", "none")


def _check_eps(eps) -> float:
    if isinstance(eps, bool) or not isinstance(eps, Real):
        raise TypeError(f"eps must be a number in [0, 1), got {type(eps).__name__}")
    eps = float(eps)
    if not (math.isfinite(eps) and 0.0 <= eps < 1.0):
        raise ValueError(f"eps must be in [0, 1), got {eps}; eps = 1 would make every target uniform")
    return eps


def _check_n_classes(n_classes) -> int:
    if isinstance(n_classes, bool) or not isinstance(n_classes, Integral):
        raise TypeError(f"n_classes must be an int, got {type(n_classes).__name__}")
    if n_classes < 1:
        raise ValueError(f"n_classes must be >= 1, got {n_classes}")
    return int(n_classes)


def _check_labels(y, n_classes: int) -> None:
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"y must be a torch.Tensor of class indices, got {type(y).__name__}")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise TypeError(f"y must hold integer class indices, got dtype {y.dtype}; convert with y.long()")
    if y.numel() == 0:
        return
    # One reduction and one device-to-host copy for both bounds.
    low, high = torch.aminmax(y)
    low, high = int(low), int(high)
    if low < 0 or high >= n_classes:
        bad = low if low < 0 else high
        raise ValueError(f"class index {bad} is out of range for {n_classes} classes (valid: 0 to {n_classes - 1})")


def smooth_targets(y: torch.Tensor, n_classes: int, eps: float, *, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Label-smoothed targets: eps/K on every class, 1 - eps + eps/K on the true one.

    Args:
        y: integer tensor [N] of class indices in [0, n_classes).
        n_classes: K, the number of classes.
        eps: smoothing in [0, 1); eps = 0 gives one-hot targets.
        dtype: floating dtype of the result.

    Returns:
        A new tensor [N, n_classes] of `dtype` on `y`'s device; each row sums to 1.

    Example:
        >>> smooth_targets(torch.tensor([1]), 5, 0.1)
        tensor([[0.0200, 0.9200, 0.0200, 0.0200, 0.0200]])
    """
    n_classes = _check_n_classes(n_classes)
    eps = _check_eps(eps)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    _check_labels(y, n_classes)
    if y.ndim != 1:
        raise ValueError(f"y must have shape [N], got shape {list(y.shape)}")
    off_value = eps / n_classes
    targets = torch.full((y.shape[0], n_classes), off_value, dtype=dtype, device=y.device)
    # The true class keeps 1 - eps of its mass and receives its share eps/K of the uniform part.
    return targets.scatter_(1, y.long().unsqueeze(1), 1.0 - eps + off_value)


def label_smoothing_ce(logits: torch.Tensor, y: torch.Tensor, eps: float, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy against label-smoothed targets, as torch's `cross_entropy(label_smoothing=eps)`.

    Computes (1 - eps) * NLL + eps * mean over classes of -log p from one log-softmax, without
    building the [N, K] target tensor: the same value as the cross-entropy against
    `smooth_targets(y, K, eps)`, at the cost of plain cross-entropy.

    Args:
        logits: floating tensor [N, K] (or [N, K, d1, ...], classes on dimension 1, as in torch).
        y: integer class indices [N] (or [N, d1, ...]) in [0, K).
        eps: smoothing in [0, 1).
        reduction: "mean" (over every sample and position), "sum", or "none" (one loss per sample).

    Returns:
        The loss in `logits`' dtype and device; a scalar unless reduction is "none".
    """
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"logits must be a torch.Tensor, got {type(logits).__name__}")
    if not logits.is_floating_point():
        raise TypeError(f"logits must be a floating-point tensor, got dtype {logits.dtype}")
    if logits.ndim < 2:
        raise ValueError(f"logits must have shape [N, K, ...], got shape {list(logits.shape)}")
    eps = _check_eps(eps)
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    n_classes = logits.shape[1]
    if n_classes < 1:
        raise ValueError("logits have no classes (dimension 1 is empty)")
    _check_labels(y, n_classes)
    expected_shape = logits.shape[:1] + logits.shape[2:]
    if y.shape != expected_shape:
        raise ValueError(f"y has shape {list(y.shape)} but logits {list(logits.shape)} need labels of shape {list(expected_shape)}")
    if y.device != logits.device:
        raise ValueError(f"y is on {y.device} but logits are on {logits.device}")

    log_p = F.log_softmax(logits, dim=1)
    nll = F.nll_loss(log_p, y.long(), reduction=reduction)
    # eps * mean over classes of -log p, reduced like the NLL. Written as a sum times a constant:
    # the backward of a sum is a free broadcast, while that of a mean materializes a divided copy.
    if reduction == "none":
        uniform = log_p.sum(dim=1) * (-eps / n_classes)
    else:
        divisor = n_classes if reduction == "sum" else max(log_p.numel(), 1)  # mean: positions x classes
        uniform = log_p.sum() * (-eps / divisor)
    return nll * (1.0 - eps) + uniform

"""Wrong label smoothing code that students really write. `breaks`: the checks each must fail.

The seed student (shared/seed/student_answers.md) answered Q13 with [0.01, 0.01, 0.01, 0.96, 0.01]
for five categories, index 1, eps = 0.1: the off-value eps/10 of the book's ten-class example, the
rest (0.96) on the true class, placed at the wrong index. `SEED_Q13_ANSWER` is that answer as a value;
`targets_seed_student` is a function that reproduces it.
"""
import torch
import torch.nn.functional as F

from autograder.golden.mutants import Mutant

SEED_Q13_ANSWER = [0.01, 0.01, 0.01, 0.96, 0.01]


def _checked(y, n_classes, eps):
    # Argument checks done right, so that each mutant breaks only the behaviour it names.
    if not isinstance(y, torch.Tensor) or y.is_floating_point() or y.dtype == torch.bool:
        raise TypeError("y must be an integer tensor of class indices")
    if not 0 <= eps < 1:
        raise ValueError("eps must be in [0, 1)")
    if y.numel() and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError("a class index is out of range")


def _checked_loss(logits, y, eps):
    _checked(y, logits.shape[1], eps)
    if y.shape[0] != logits.shape[0]:
        raise ValueError("one label per row of logits")


def targets_seed_student(y, n_classes, eps, dtype=torch.float32):
    # eps/10 from the ten-class example, the rest on one class, counted from the end: index K - 1 - y
    _checked(y, n_classes, eps)
    off = eps / 10
    out = torch.full((len(y), n_classes), off, dtype=dtype, device=y.device)
    return out.scatter_(1, (n_classes - 1 - y.long())[:, None], 1 - off * (n_classes - 1))


def targets_bag_of_tricks(y, n_classes, eps, dtype=torch.float32):
    # the other convention: eps/(K-1) on the wrong classes, 1 - eps on the true one
    _checked(y, n_classes, eps)
    out = torch.full((len(y), n_classes), eps / (n_classes - 1), dtype=dtype, device=y.device)
    return out.scatter_(1, y.long()[:, None], 1 - eps)


def targets_on_value_without_share(y, n_classes, eps, dtype=torch.float32):
    # 1 - eps on the true class, forgetting its own eps/K: rows sum to 1 - eps/K
    _checked(y, n_classes, eps)
    out = torch.full((len(y), n_classes), eps / n_classes, dtype=dtype, device=y.device)
    return out.scatter_(1, y.long()[:, None], 1 - eps)


def targets_hard_coded_five(y, n_classes, eps, dtype=torch.float32):
    # written for the questionnaire's five categories
    _checked(y, n_classes, eps)
    out = torch.full((len(y), 5), eps / 5, dtype=dtype, device=y.device)
    return out.scatter_(1, y.long()[:, None], 1 - eps + eps / 5)


def targets_no_checks(y, n_classes, eps, dtype=torch.float32):
    return F.one_hot(y.long(), n_classes).to(dtype) * (1 - eps) + eps / n_classes


def targets_float64(y, n_classes, eps, dtype=torch.float32):
    # builds the targets from Python floats with torch.tensor(..., dtype=float64) and ignores `dtype`
    _checked(y, n_classes, eps)
    rows = [[1 - eps + eps / n_classes if k == label else eps / n_classes for k in range(n_classes)]
            for label in y.tolist()]
    return torch.tensor(rows, dtype=torch.float64, device=y.device)


def targets_one_hot_at_eps_zero(y, n_classes, eps, dtype=torch.float32):
    # a shortcut for eps = 0 that forgets `dtype`; right for every eps > 0
    _checked(y, n_classes, eps)
    if eps == 0:
        return F.one_hot(y.long(), n_classes).float()
    return (F.one_hot(y.long(), n_classes) * (1 - eps) + eps / n_classes).to(dtype)


def loss_smooths_logits(logits, y, eps, reduction="mean"):
    # mixes the *logits* with a uniform eps/K instead of the targets
    _checked_loss(logits, y, eps)
    k = logits.shape[1]
    return F.cross_entropy(logits * (1 - eps) + eps / k, y.long(), reduction=reduction)


def loss_mean_over_classes(logits, y, eps, reduction="mean"):
    # averages -target * log p over the classes instead of summing: the loss is K times too small
    _checked_loss(logits, y, eps)
    k = logits.shape[1]
    targets = F.one_hot(y.long(), k).to(logits.dtype) * (1 - eps) + eps / k
    per_sample = -(targets * F.log_softmax(logits, dim=1)).mean(dim=1)
    return {"mean": per_sample.mean(), "sum": per_sample.sum(), "none": per_sample}[reduction]


def loss_softmax_over_batch(logits, y, eps, reduction="mean"):
    # log_softmax over dimension 0 (the samples) instead of 1 (the classes)
    _checked_loss(logits, y, eps)
    k = logits.shape[1]
    targets = F.one_hot(y.long(), k).to(logits.dtype) * (1 - eps) + eps / k
    per_sample = -(targets * F.log_softmax(logits, dim=0)).sum(dim=1)
    return {"mean": per_sample.mean(), "sum": per_sample.sum(), "none": per_sample}[reduction]


def loss_hard_coded_five(logits, y, eps, reduction="mean"):
    # the smoothing term divided by 5 whatever the number of classes
    _checked_loss(logits, y, eps)
    log_p = F.log_softmax(logits, dim=1)
    per_sample = (1 - eps) * F.nll_loss(log_p, y.long(), reduction="none") - eps / 5 * log_p.sum(dim=1)
    return {"mean": per_sample.mean(), "sum": per_sample.sum(), "none": per_sample}[reduction]


def loss_bag_of_tricks(logits, y, eps, reduction="mean"):
    _checked_loss(logits, y, eps)
    k = logits.shape[1]
    targets = torch.full_like(logits, eps / (k - 1)).scatter_(1, y.long()[:, None], 1 - eps)
    per_sample = -(targets * F.log_softmax(logits, dim=1)).sum(dim=1)
    return {"mean": per_sample.mean(), "sum": per_sample.sum(), "none": per_sample}[reduction]


def loss_always_mean(logits, y, eps, reduction="mean"):
    # accepts `reduction` and ignores it
    _checked_loss(logits, y, eps)
    return F.cross_entropy(logits, y.long(), label_smoothing=eps)


def loss_plain_ce_at_eps_zero(logits, y, eps, reduction="mean"):
    # a shortcut for eps = 0 that forgets `reduction`; right for every eps > 0
    _checked_loss(logits, y, eps)
    if eps == 0:
        return F.cross_entropy(logits, y.long())
    return F.cross_entropy(logits, y.long(), label_smoothing=eps, reduction=reduction)


def loss_log_of_softmax(logits, y, eps, reduction="mean"):
    # log(softmax(x)) instead of log_softmax(x): -inf (then inf or nan) once a probability underflows
    _checked_loss(logits, y, eps)
    k = logits.shape[1]
    targets = F.one_hot(y.long(), k).to(logits.dtype) * (1 - eps) + eps / k
    per_sample = -(targets * torch.log(torch.softmax(logits, dim=1))).sum(dim=1)
    return {"mean": per_sample.mean(), "sum": per_sample.sum(), "none": per_sample}[reduction]


def loss_no_checks(logits, y, eps, reduction="mean"):
    # torch's own checks: out-of-range labels raise IndexError, eps = 1 is accepted
    return F.cross_entropy(logits, y, label_smoothing=eps, reduction=reduction)


T_VALUES, T_ERRORS = "smooth_targets_values", "smooth_targets_errors"
L_VALUES, L_REDUCTIONS = "label_smoothing_ce_values", "label_smoothing_ce_reductions"
L_LARGE, L_ERRORS = "label_smoothing_ce_large_logits", "label_smoothing_ce_errors"
LOSS_VALUE_CHECKS = frozenset({L_VALUES, L_REDUCTIONS, L_LARGE})

MUTANTS = [
    Mutant("the seed's answer: eps/10 off, the rest on index K - 1 - y", "smooth_targets", targets_seed_student,
           frozenset({T_VALUES})),
    Mutant("eps/(K-1) off, 1 - eps on (the Bag of Tricks convention)", "smooth_targets", targets_bag_of_tricks,
           frozenset({T_VALUES})),
    Mutant("on-value 1 - eps without + eps/K", "smooth_targets", targets_on_value_without_share, frozenset({T_VALUES})),
    # It crashes on valid inputs with K != 5, so it also loses the error check (whose valid inputs it must accept).
    Mutant("hard-coded for K = 5", "smooth_targets", targets_hard_coded_five, frozenset({T_VALUES, T_ERRORS})),
    Mutant("float64 whatever dtype is asked", "smooth_targets", targets_float64, frozenset({T_VALUES})),
    Mutant("no argument checks", "smooth_targets", targets_no_checks, frozenset({T_ERRORS})),
    Mutant("float32 one-hot when eps = 0, whatever dtype is asked", "smooth_targets", targets_one_hot_at_eps_zero,
           frozenset({T_VALUES})),
    Mutant("smooths the logits instead of the targets", "label_smoothing_ce", loss_smooths_logits, LOSS_VALUE_CHECKS),
    Mutant("averages over the classes instead of summing", "label_smoothing_ce", loss_mean_over_classes,
           LOSS_VALUE_CHECKS),
    Mutant("softmax over the batch dimension", "label_smoothing_ce", loss_softmax_over_batch, LOSS_VALUE_CHECKS),
    Mutant("smoothing term hard-coded for K = 5", "label_smoothing_ce", loss_hard_coded_five, LOSS_VALUE_CHECKS),
    Mutant("eps/(K-1) off, 1 - eps on (the Bag of Tricks convention)", "label_smoothing_ce", loss_bag_of_tricks,
           LOSS_VALUE_CHECKS),
    Mutant("ignores reduction", "label_smoothing_ce", loss_always_mean, frozenset({L_REDUCTIONS})),
    Mutant("ignores reduction when eps = 0", "label_smoothing_ce", loss_plain_ce_at_eps_zero, frozenset({L_REDUCTIONS})),
    Mutant("log(softmax(x)) instead of log_softmax(x)", "label_smoothing_ce", loss_log_of_softmax,
           frozenset({L_LARGE})),
    Mutant("relies on torch's checks", "label_smoothing_ce", loss_no_checks, frozenset({L_ERRORS})),
]

"""A tiny, fully specified model for testing functions that take a model (such as a TTA function).

The grader can only hand a submission plain data (tensors, numbers, lists, dicts), never a model.
So tests that need a model pass its *weights*, and both sides build the same model from them with
:func:`build_probe_model`: the submission's kernel to call the student's function, the grader's
own process to compute the expected answer.

The probe is small but has what makes "eval mode" matter:

* ``Conv2d(3x3, padding 1) -> BatchNorm2d -> ReLU -> AdaptiveAvgPool2d(4) -> Flatten -> Dropout -> Linear``;
* its BatchNorm running statistics are far from the statistics of a typical batch, and its dropout
  probability is 0.5, so predicting in training mode gives a different (and random) answer;
* pooling to a 4x4 grid (not a global average) keeps the logits position-dependent, so the five
  crops of an image get clearly different predictions.

Nothing here computes test-time augmentation; :func:`run_probe` only calls the function it is given
and reports what came back and the state the model was left in.

Example:
    >>> weights = probe_weights(torch.Generator().manual_seed(0), in_channels=3, n_classes=4)
    >>> model = build_probe_model(weights)          # in training mode, as weights["training"] says
    >>> model(torch.rand(2, 3, 8, 8)).shape
    torch.Size([2, 4])
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["ProbeModel", "ProbeModelError", "probe_weights", "build_probe_model", "run_probe",
           "ProbeDataLoaders", "ProbeLearner", "run_learner_probe"]

_TENSOR_KEYS = ("conv_weight", "conv_bias", "bn_weight", "bn_bias", "bn_running_mean", "bn_running_var",
                "linear_weight", "linear_bias")
_POOLED = 4  # side of the pooled grid: logits depend on where things are in the crop


class ProbeModelError(RuntimeError):
    """Raised by a probe built with ``fail=True``: a model that fails during prediction."""


class ProbeModel(nn.Module):
    """Conv -> BatchNorm -> ReLU -> 4x4 average pool -> Dropout -> Linear; see the module docstring."""

    def __init__(self, in_channels: int, hidden: int, n_classes: int, dropout: float, fail: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, hidden, kernel_size=3, padding=1)
        self.bn = nn.BatchNorm2d(hidden)
        self.pool = nn.AdaptiveAvgPool2d(_POOLED)
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(hidden * _POOLED * _POOLED, n_classes)
        self.fail = fail

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fail:
            raise ProbeModelError("this probe model was built to fail during prediction (fail=True)")
        features = self.pool(torch.relu(self.bn(self.conv(x)))).flatten(1)
        return self.linear(self.dropout(features))


def probe_weights(generator: torch.Generator, *, in_channels: int = 3, hidden: int = 4, n_classes: int = 5,
                  dropout: float = 0.5, logit_scale: float = 5.0, dtype: torch.dtype = torch.float32,
                  training: bool = True, fail: bool = False) -> dict:
    """Random weights of a probe model, as plain data (tensors, numbers and booleans).

    Args:
        generator: the source of randomness (the same generator state gives the same weights).
        in_channels: channels of the images the model takes.
        hidden: channels of the convolution.
        n_classes: number of outputs.
        dropout: dropout probability before the linear layer.
        logit_scale: rough spread of the logits; a few units makes softmax clearly non-linear.
        dtype: floating-point dtype of the parameters (the inputs must have the same).
        training: the mode the built model starts in.
        fail: build a model whose forward raises ProbeModelError.

    Returns:
        A dict for :func:`build_probe_model`.
    """
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    for name, value in (("in_channels", in_channels), ("hidden", hidden), ("n_classes", n_classes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")

    def normal(*shape, std=1.0, mean=0.0):
        return (torch.randn(shape, generator=generator, dtype=torch.float64) * std + mean).to(dtype)

    features = hidden * _POOLED * _POOLED
    return {
        "conv_weight": normal(hidden, in_channels, 3, 3, std=(2.0 / (9 * in_channels)) ** 0.5),
        "conv_bias": normal(hidden, std=0.1),
        "bn_weight": normal(hidden, std=0.2, mean=1.0),
        "bn_bias": normal(hidden, std=0.2),
        # Running statistics unlike a batch's: eval mode and training mode disagree clearly.
        "bn_running_mean": normal(hidden, std=0.5, mean=0.3),
        "bn_running_var": (torch.rand(hidden, generator=generator, dtype=torch.float64) * 1.5 + 0.5).to(dtype),
        "linear_weight": normal(n_classes, features, std=logit_scale / features ** 0.5),
        "linear_bias": normal(n_classes, std=0.5),
        "dropout": float(dropout),
        "training": bool(training),
        "fail": bool(fail),
    }


def build_probe_model(weights: dict) -> ProbeModel:
    """The probe model with the given weights, on their device and in their dtype.

    Args:
        weights: a dict from :func:`probe_weights` (its tensors may have been moved to another device).

    Returns:
        A ProbeModel in training mode when ``weights["training"]`` is true, else in eval mode; its
        parameters require gradients, like any freshly built model's.
    """
    if not isinstance(weights, dict):
        raise TypeError(f"weights must be a dict from probe_weights, got {type(weights).__name__}")
    missing = [k for k in (*_TENSOR_KEYS, "dropout", "training", "fail") if k not in weights]
    if missing:
        raise ValueError(f"weights lacks {missing}; make it with probe_weights")
    hidden, in_channels = weights["conv_weight"].shape[:2]
    n_classes = weights["linear_weight"].shape[0]
    model = ProbeModel(int(in_channels), int(hidden), int(n_classes), float(weights["dropout"]),
                       fail=bool(weights["fail"]))
    reference = weights["conv_weight"]
    model.to(device=reference.device, dtype=reference.dtype)
    with torch.no_grad():
        for module, prefix in ((model.conv, "conv"), (model.bn, "bn"), (model.linear, "linear")):
            module.weight.copy_(weights[f"{prefix}_weight"])
            module.bias.copy_(weights[f"{prefix}_bias"])
        model.bn.running_mean.copy_(weights["bn_running_mean"])
        model.bn.running_var.copy_(weights["bn_running_var"])
    return model.train(bool(weights["training"]))


def run_probe(fn, weights: dict, x: torch.Tensor, size) -> dict:
    """Call ``fn(model, x, size)`` on a freshly built probe and report the outcome as plain data.

    Args:
        fn: a function taking (model, images, size), such as a TTA function.
        weights: probe weights (see :func:`probe_weights`).
        x: images [N, C, H, W].
        size: passed through to `fn`.

    Returns:
        ``{"output": what fn returned (None when the probe failed), "requires_grad": whether that
        output is attached to autograd (None when it is not a tensor), "training": the training flag
        of every module of the model after the call}``.  When the probe was built with
        ``fail=True``, its ProbeModelError is caught here (other exceptions propagate), so the state
        the model is left in after a failed prediction can be inspected.
    """
    model = build_probe_model(weights)
    try:
        output = fn(model, x, size)
    except ProbeModelError:
        if not weights["fail"]:
            raise
        output = None
    return {"output": output,
            "requires_grad": bool(output.requires_grad) if isinstance(output, torch.Tensor) else None,
            "training": [bool(m.training) for m in model.modules()]}


class ProbeDataLoaders:
    """Stands for fastai DataLoaders of images of one size: it only knows its `size` and `bs`."""

    def __init__(self, size, bs):
        self.size, self.bs = size, bs

    def __repr__(self) -> str:
        return f"ProbeDataLoaders(size={self.size!r}, bs={self.bs!r})"


def _plain(value):
    # Numbers as plain ints/floats (a numpy or tensor scalar would not survive the recording).
    if isinstance(value, bool) or value is None:
        return value
    try:
        return int(value) if float(value).is_integer() and not isinstance(value, float) else float(value)
    except (TypeError, ValueError):
        return repr(value)[:80]


class ProbeLearner:
    """Stands for a fastai Learner in tests of training loops: it trains nothing and logs every call.

    Setting `dls` and calling `fit_one_cycle`, `fit` or `fine_tune` append to `calls`, in order, as
    ``["dls", size, bs]`` or ``[method name, epochs, learning rate]``.
    """

    def __init__(self, dls: ProbeDataLoaders):
        self._dls = dls
        self.calls: list[list] = []

    @property
    def dls(self) -> ProbeDataLoaders:
        return self._dls

    @dls.setter
    def dls(self, value) -> None:
        self.calls.append(["dls", _plain(getattr(value, "size", None)), _plain(getattr(value, "bs", None))])
        self._dls = value

    def _log_fit(self, method: str, n_epoch, lr):
        self.calls.append([method, _plain(n_epoch), _plain(lr)])

    def fit_one_cycle(self, n_epoch, lr_max=None, *args, **kwargs):
        self._log_fit("fit_one_cycle", n_epoch, lr_max)

    def fit(self, n_epoch, lr=None, *args, **kwargs):
        self._log_fit("fit", n_epoch, lr)

    def fine_tune(self, epochs, base_lr=2e-3, *args, **kwargs):
        self._log_fit("fine_tune", epochs, base_lr)


def run_learner_probe(fn, sizes, lr, bs: int, first_size: int = 8) -> dict:
    """Call ``fn(learn, sizes, make_dls, lr)`` with a ProbeLearner and report every call as plain data.

    Args:
        fn: a function taking (learn, sizes, make_dls, lr), such as a progressive fit.
        sizes: passed through to `fn`.
        lr: passed through to `fn`.
        bs: the batch size of the learner's DataLoaders before the call.
        first_size: the image size of those DataLoaders.

    Returns:
        ``{"output": what fn returned, "calls": the ProbeLearner's log, with every call of make_dls
        logged as ["make_dls", size, bs] in its place}``.
    """
    learn = ProbeLearner(ProbeDataLoaders(first_size, bs))

    def make_dls(size, bs):
        learn.calls.append(["make_dls", _plain(size), _plain(bs)])
        return ProbeDataLoaders(size, bs)

    output = fn(learn, sizes, make_dls, lr)
    return {"output": output, "calls": learn.calls}

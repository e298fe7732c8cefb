"""A small CPU-friendly model, a Learner factory and the training budget of the workbook.

``small_xresnet`` is fastai's ``XResNet`` (the "bag of tricks" ResNet the chapter trains from
scratch on Imagenette) with one residual block per stage and half the channel widths of
xresnet18: about 1.2 M parameters instead of 11 M.

Calibration on the embedded synthetic set (default "small" variant: 1,500 train / 500 val images)
on 2 CPU cores, ``get_dls(path, size)`` + ``make_learner(dls)`` + ``fit_one_cycle(epochs, 1e-2)``,
measured with ``bench/calibrate_data.py`` (which prints the current figures):

====  =======================  ==========================  ==============  ======================
size  epochs in ~60 s wall     throughput (train + valid)  valid accuracy  texture pairs confused
====  =======================  ==========================  ==============  ======================
64    8 (58-60 s, ~105 s CPU)  ~200 img/s                  0.74            0.00
32    15-19 (51-67 s)          ~430 img/s                  0.73-0.75       0.15
32    8 (23 s, 37 s CPU)       ~500 img/s                  0.68            0.16
====  =======================  ==========================  ==============  ======================

(Ranges: two runs on a shared machine; the epoch count comes from timing a warm-up epoch.)  In equal
time 32 px keeps up by running twice the epochs, but at an equal number of epochs 64 px wins: at
32 px the model confuses the striped/dotted classes with their plain twins (share of those validation
images predicted as the twin).  fastai's ``learn.tta()`` adds about one point at 64 px (0.744 ->
0.756).  Chance is 0.10.

``training_budget(epochs)`` returns the epochs (and callbacks) a notebook should train for.  With
the environment variable ``WORKBOOK_FAST=1`` (grading, CI) it returns 1 epoch that stops after 5 %
of the training batches (fastai's ``ShortEpochCallback``) and validates that epoch on 5 % of the
validation images, the same share of every class (``ShortValidation``; at least one batch, so metrics
stay defined).
``learn.validate()``, ``get_preds`` and ``tta`` outside ``fit`` still see the whole validation set.
Training results are never graded.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import fastai.callback.all  # noqa: F401  (adds fit_one_cycle, lr_find, progress bars... to Learner)
import torch.nn as nn
from fastai.callback.core import Callback
from fastai.callback.training import ShortEpochCallback
from fastai.data.core import Datasets, test_set
from fastai.learner import Learner
from fastai.metrics import accuracy
from fastai.torch_core import set_seed
from fastai.vision.models.xresnet import ResBlock, XResNet

from workbook.cache import cache_dir
from workbook.data import seed_dataloaders

__all__ = ["small_xresnet", "make_learner", "TrainingBudget", "training_budget", "fast_mode",
           "ShortValidation", "spread_subset", "FAST_TRAIN_FRACTION"]

FAST_TRAIN_FRACTION = 0.05  # share of the training (and validation) batches of the one epoch when WORKBOOK_FAST=1


def small_xresnet(n_out: int = 10, *, widen: float = 0.5, blocks_per_stage: int = 1, dropout: float = 0.0,
                  c_in: int = 3) -> XResNet:
    """A reduced fastai XResNet: four stages of `blocks_per_stage` basic residual blocks.

    Args:
        n_out: number of outputs (classes).
        widen: channel multiplier of the stages (xresnet18 is 1.0: 64, 128, 256, 512 channels).
        blocks_per_stage: residual blocks per stage (xresnet18 has 2).
        dropout: dropout probability before the final linear layer.
        c_in: input channels.

    Returns:
        An untrained ``XResNet`` (an ``nn.Sequential``), initialised by fastai's ``init_cnn``.
    """
    for name, value in (("n_out", n_out), ("blocks_per_stage", blocks_per_stage), ("c_in", c_in)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if not 0 < widen <= 4:
        raise ValueError(f"widen must be in (0, 4], got {widen}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    # XResNet's first stage takes 64 channels from the stem, so the stem must end at 64.
    return XResNet(ResBlock, 1, [blocks_per_stage] * 4, p=dropout, c_in=c_in, n_out=n_out,
                   stem_szs=(16, 32, 64), widen=widen)


def make_learner(dls, *, model: nn.Module | None = None, loss_func=None, cbs=None, seed: int = 0,
                 path: str | os.PathLike | None = None) -> Learner:
    """A fastai Learner with the accuracy metric, seeded for reproducible training.

    Calls ``set_seed(seed, reproducible=True)`` (python, numpy and torch global generators, which
    fastai's augmentations and model initialisation draw from) before building the model, and
    re-seeds the shuffling of `dls` (``seed_dataloaders``): two Learners made with the same seed
    on the same DataLoaders train identically.

    Args:
        dls: fastai DataLoaders (e.g. from ``workbook.data.get_dls``).
        model: the model; default ``small_xresnet(n_out=dls.c)``.
        loss_func: loss; default fastai's choice for the targets (cross-entropy for categories).
        cbs: extra callbacks for every fit (e.g. ``MixUp()``).
        seed: seed for initialisation, augmentation and dropout.
        path: folder where ``learn.save`` / ``lr_find`` write (``<path>/models``); default
            ``cache_dir()``, so the data folder (possibly read-only) is never written to.

    Returns:
        The Learner.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if not hasattr(dls, "train") or not hasattr(dls, "valid"):
        raise TypeError(f"dls must be fastai DataLoaders, got {type(dls).__name__}")
    if model is not None and not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    set_seed(seed, reproducible=True)
    # The loaders' shuffling generators advance with every epoch; re-seed them so that a second
    # Learner built with the same seed on the same dls trains on the same batch order.
    seed_dataloaders(dls, seed)
    if model is None:
        model = small_xresnet(n_out=dls.c)
    if getattr(dls, "device", None) is not None:
        model.to(dls.device)  # fastai moves it only when fit starts; a direct call before that needs it there
    return Learner(dls, model, loss_func=loss_func, metrics=accuracy, cbs=cbs,
                   path=Path(path) if path is not None else cache_dir())


def spread_subset(dl, n: int):
    """A copy of the fastai DataLoader `dl` over `n` of its items, taken at evenly spaced positions.

    Imagenette-layout items are sorted by class folder, so evenly spaced positions take the same share
    of every class (stratified sampling), where the first `n` items would cover the first classes only.
    The copy keeps the labels, transforms and batch size of `dl`.

    Args:
        dl: a DataLoader over a fastai ``Datasets`` (e.g. ``dls.valid`` from ``workbook.data.get_dls``).
        n: number of items, 1 <= n <= len(dl.dataset).
    """
    dataset = dl.dataset
    if not isinstance(dataset, Datasets):
        raise TypeError(f"spread_subset needs a DataLoader over a fastai Datasets, got {type(dataset).__name__}")
    total = len(dataset)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= total:
        raise ValueError(f"n must be an int in 1..{total}, got {n!r}")
    # The centre of each of n equal slices of the item list.
    items = [dataset.items[(2 * k + 1) * total // (2 * n)] for k in range(n)]
    return dl.new(test_set(dataset, items, with_labels=True))


class ShortValidation(Callback):
    """Validate the epochs of `fit` on a `pct` share of the validation items, from every class.

    fastai's ``ShortEpochCallback(short_valid=True)`` cancels validation instead, and its Recorder then
    drops the epoch's validation loss and metrics. Here validation runs to its end on fewer items
    (at least one batch; evenly spaced, see :func:`spread_subset`), so every metric is recorded and
    means something. Only inside ``fit``: ``validate``, ``get_preds`` and ``tta`` are untouched.

    Args:
        pct: share of the validation items, in (0, 1].
    """
    order = -10  # before the Recorder resets its metrics for the new DataLoader

    def __init__(self, pct: float):
        if isinstance(pct, bool) or not isinstance(pct, (int, float)) or not 0 < pct <= 1:
            raise ValueError(f"pct must be a number in (0, 1], got {pct!r}")
        self.pct = pct
        self.trained = False
        self._source = self._short = None  # the validation DataLoader last shortened, and its short copy

    # `validate` and `get_preds` also send before_fit/before_epoch; only fit's epochs have a training phase.
    def before_epoch(self):
        self.trained = False

    def before_train(self):
        self.trained = True

    def before_validate(self):
        if not self.trained:
            return
        dl = self.learn.dl
        if dl is not self._source:  # a new DataLoader (e.g. the next size of progressive resizing)
            n = min(dl.n, max(dl.bs, math.ceil(self.pct * dl.n)))
            self._source, self._short = dl, (spread_subset(dl, n) if n < dl.n else dl)
        self.learn.dl = self._short


def fast_mode() -> bool:
    """True when the environment variable WORKBOOK_FAST is set to 1/true/yes (case-insensitive)."""
    return os.environ.get("WORKBOOK_FAST", "").strip().lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class TrainingBudget:
    """How long to train: pass ``epochs`` and ``cbs`` to ``fit``/``fit_one_cycle``.

    Attributes:
        epochs: number of epochs.
        cbs: callbacks that shorten the epochs (empty for a full budget).
        fast: whether this is the reduced WORKBOOK_FAST budget.
    """
    epochs: int
    cbs: list = field(default_factory=list)
    fast: bool = False


def training_budget(epochs: int, *, fast: bool | None = None) -> TrainingBudget:
    """The training budget for a notebook experiment that would normally run `epochs` epochs.

    Args:
        epochs: the full number of epochs.
        fast: force the reduced budget on/off; default: ``fast_mode()`` (env var WORKBOOK_FAST).

    Returns:
        ``TrainingBudget(epochs, [], False)``, or in fast mode ``TrainingBudget(1,
        [ShortEpochCallback(FAST_TRAIN_FRACTION, short_valid=False), ShortValidation(FAST_TRAIN_FRACTION)],
        True)``: one epoch on the first 5 % of the training batches, validated on 5 % of the
        validation images of every class.

    Example:
        >>> budget = training_budget(5)
        >>> learn.fit_one_cycle(budget.epochs, 3e-3, cbs=budget.cbs)   # doctest: +SKIP
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int):
        raise TypeError(f"epochs must be an int, got {type(epochs).__name__}")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if fast is None:
        fast = fast_mode()
    elif not isinstance(fast, bool):
        raise TypeError(f"fast must be a bool or None, got {type(fast).__name__}")
    if not fast:
        return TrainingBudget(epochs=epochs, cbs=[], fast=False)
    return TrainingBudget(epochs=1, cbs=[ShortEpochCallback(pct=FAST_TRAIN_FRACTION, short_valid=False),
                                         ShortValidation(FAST_TRAIN_FRACTION)], fast=True)

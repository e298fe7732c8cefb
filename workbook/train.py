"""A command-line script for a long training run: ``python -m workbook.train --help``.

This is the workbook's answer to the chapter's Further Research item 3 ("find the script training
Imagenette using Mixup and build a script for a long training on your own project").  The script
it takes as its model is fastai's Imagenette example (``nbs/examples/train_imagenette.py`` in the
fastai repository; the leaderboard at https://github.com/fastai/imagenette links to it).  That
example reads its settings from the command line, builds DataLoaders with a DataBlock, trains an
XResNet from random weights with fastai's ``LabelSmoothingCrossEntropy`` as the loss, adds the
``MixUp`` callback when a Mixup alpha is given, and fits with a flat-then-cosine schedule.

This script keeps that shape and adapts it to the workbook:

* data: the embedded synthetic set (default) or real Imagenette (every image), through
  :func:`workbook.data.get_imagenette` and :func:`workbook.data.get_dls`; the default is
  ``$WORKBOOK_DATA``, the switch the notebooks follow too;
* model: :func:`workbook.models.small_xresnet` by default (CPU-sized), or fastai's xresnet18/34/50;
* a progressive-resizing schedule (``--schedule 32:3,64:2``: three epochs at 32 px, then two at
  64 px); each stage is its own one-cycle fit on new DataLoaders, as in the chapter;
* Mixup *or* CutMix (fastai's ``MixUp(alpha)`` / ``CutMix(alpha)``), label smoothing (fastai's
  ``LabelSmoothingCrossEntropy(eps)``), test-time augmentation at the end (``learn.tta()``);
* on CUDA, defaults that keep the GPU busy: DataLoader worker processes and mixed precision
  (fastai's ``to_bf16``, or ``to_fp16`` where bf16 is not supported);
* results: ``results.csv`` (one row per epoch and a final row), ``summary.json`` and
  ``curves.png`` in ``--out``; the summary and the plot's title name the data folder and its image
  counts;
* a corrupt image ends the run with one line naming the file (exit status 1).

``WORKBOOK_FAST=1`` (or ``--fast``) shortens every stage to one epoch on 20 % of the training
(and validation) batches (:func:`workbook.models.training_budget`), for CI and grading.

Use from Python: ``main(["--schedule", "32:2", "--mixup", "0.4", "--quiet"])`` returns 0; the
configuration alone comes from :func:`parse_config` (no data, no training), the training from
:func:`train`.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["TrainConfig", "EpochRow", "RunResult", "DATA_NAMES", "ARCHS", "build_parser", "parse_config",
           "parse_schedule", "regularisation", "train", "write_results", "main", "RESULT_COLUMNS"]

from workbook.data_names import DATA_NAMES as _DATASETS
from workbook.data_names import REAL_IMAGENETTE, SUBSET_VARIANTS, SYNTHETIC_NAMES, data_name

# --data accepts the names of get_imagenette and the folder names of the embedded variants.
DATA_NAMES = {**{name: name for name in _DATASETS},
              **{f"imagenette-{name}": name for name in SYNTHETIC_NAMES if name != "synthetic"}}
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
CUDA_WORKERS = 8       # DataLoader processes on CUDA (at most the CPU count): JPEG decoding must keep pace
ARCHS = ("small_xresnet", "xresnet18", "xresnet34", "xresnet50")
RESULT_COLUMNS = ("epoch", "size", "train_loss", "valid_loss", "accuracy", "tta_accuracy", "time_s")
MIN_SIZE = 16          # the XResNets downsample by 32; below 16 px there is almost nothing left to see

DESCRIPTION = """\
Train a model on Imagenette-layout data from random weights, in the spirit of fastai's Imagenette
training example: a progressive-resizing schedule, one-cycle training per stage, optional Mixup or
CutMix, optional label smoothing, and test-time augmentation at the end. The progress bar shows
each epoch; at the end OUT/results.csv (one row per epoch, then a row "final"), OUT/summary.json,
OUT/curves.png and OUT/predictions.npz (the final model's class probabilities on every validation
image) are written.
"""

EPILOG = """\
examples:
  python -m workbook.train                                  # embedded set, 64 px, 5 epochs
  python -m workbook.train --size 32 --epochs 3 --label-smoothing 0.1
  python -m workbook.train --schedule 32:6,64:4 --mixup 0.4 --tta --out runs/mixup
  python -m workbook.train --data 160 --arch xresnet50 --size 128 --epochs 80 \\
      --mixup 0.2 --label-smoothing 0.1 --device cuda        # real Imagenette on a GPU
  WORKBOOK_FAST=1 python -m workbook.train                  # smoke run: 1 short epoch per stage

data names: synthetic (= synthetic-small), synthetic-tiny, synthetic-large (also spelled
imagenette-synthetic-small etc.), or real Imagenette 160, 320, full (every image; downloaded by
fastai, or read from $IMAGENETTE_PATH). The default is $WORKBOOK_DATA, else synthetic.

on CUDA: by default 8 DataLoader worker processes (at most one per CPU core) and mixed precision
(bf16 where the GPU supports it, else fp16 with loss scaling); --arch xresnet50 is the full-size
model of fastai's leaderboard runs. On the CPU: no workers, fp32, small_xresnet.
"""


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run needs, checked.  Built by :func:`parse_config`.

    Attributes:
        data: a name accepted by ``get_imagenette`` ("synthetic", "synthetic-tiny", "160", ...).
        variant: the ``get_imagenette`` variant ("tiny", "small", "large", "all" for real data), or None:
            every image of real Imagenette, the named variant of the embedded set.
        stages: ((size, epochs), ...): the progressive-resizing schedule, one fit per stage.
        bs: batch size.
        lr: maximum learning rate of each one-cycle fit.
        arch: one of ARCHS.
        mixup: Mixup alpha, or None for no Mixup.
        cutmix: CutMix alpha, or None for no CutMix (never both).
        label_smoothing: epsilon of LabelSmoothingCrossEntropy; 0.0 means plain cross-entropy.
        tta: run ``learn.tta()`` at the end and report its accuracy.
        device: "cpu" or "cuda" ("auto" is resolved when the config is built).
        precision: "fp32", or mixed precision "fp16" / "bf16" (CUDA only; "auto" is resolved).
        seed: seed of initialisation, augmentation, Mixup draws and shuffling.
        workers: DataLoader worker processes (resolved from the device when not given).
        out: output folder.
        fast: the reduced WORKBOOK_FAST budget (one short epoch per stage).
        quiet: no progress bar (the summary is still printed).
    """
    data: str = "synthetic"
    variant: str | None = None
    stages: tuple = ((64, 5),)
    bs: int = 64
    lr: float = 1e-2
    arch: str = "small_xresnet"
    mixup: float | None = None
    cutmix: float | None = None
    label_smoothing: float = 0.0
    tta: bool = False
    device: str = "cpu"
    precision: str = "fp32"
    seed: int = 0
    workers: int = 0
    out: Path = Path("train-output")
    fast: bool = False
    quiet: bool = False

    @property
    def epochs(self) -> int:
        """Total epochs of the schedule (before the WORKBOOK_FAST reduction)."""
        return sum(epochs for _, epochs in self.stages)

    def describe(self) -> str:
        """One line naming what this run does."""
        schedule = ", ".join(f"{e} epoch{'s' if e > 1 else ''} at {s} px" for s, e in self.stages)
        extras = [f"Mixup alpha={self.mixup}" if self.mixup else "", f"CutMix alpha={self.cutmix}" if self.cutmix else "",
                  f"label smoothing eps={self.label_smoothing}" if self.label_smoothing else "",
                  "TTA" if self.tta else "", self.precision if self.precision != "fp32" else "",
                  f"{self.workers} loader workers" if self.workers else "",
                  "WORKBOOK_FAST budget: 1 short epoch per stage" if self.fast else ""]
        extra = "; ".join(e for e in extras if e)
        data = self.data if self.variant is None else f"{self.data} ({self.variant})"
        return (f"{data}, {self.arch}, {schedule}, bs={self.bs}, lr={self.lr:g}, {self.device}, seed={self.seed}"
                + (f"; {extra}" if extra else ""))


@dataclass
class EpochRow:
    """One epoch of the run, as written to results.csv."""
    epoch: int
    size: int
    train_loss: float
    valid_loss: float
    accuracy: float
    time_s: float


@dataclass
class RunResult:
    """What :func:`train` measured.

    Attributes:
        config: the configuration.
        rows: one EpochRow per epoch, in order.
        final_accuracy: validation accuracy after the last epoch.
        tta_accuracy: accuracy of ``learn.tta()`` predictions, or None without --tta.
        total_time_s: wall time of the training and TTA (not of data generation).
        batch_losses: (epoch position, smoothed training loss) after every training batch.
        data: the data set: {"name", "folder", "description", "n_train", "n_valid"}.
        predictions: the final model on the whole validation set: {"probs": [N, classes] softmax
            probabilities, "targets": [N] labels, "files": [N] paths relative to the data folder,
            "vocab": class folder names}, numpy arrays; empty when not measured.
    """
    config: TrainConfig
    rows: list
    final_accuracy: float
    tta_accuracy: float | None
    total_time_s: float
    batch_losses: list = field(default_factory=list)
    data: dict = field(default_factory=dict)
    predictions: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Arguments
# --------------------------------------------------------------------------------------------
def parse_schedule(text: str) -> tuple:
    """``"32:3,64:2"`` -> ``((32, 3), (64, 2))``.

    Args:
        text: comma-separated ``size:epochs`` stages, both positive integers.

    Raises:
        ValueError: a malformed stage, a size below MIN_SIZE or an epoch count below 1.
    """
    if not isinstance(text, str):
        raise TypeError(f"the schedule must be a str like '32:3,64:2', got {type(text).__name__}")
    stages = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", part)
        if match is None:
            raise ValueError(f"malformed schedule stage {part.strip()!r} in {text!r}: write SIZE:EPOCHS stages "
                             f"separated by commas, e.g. 32:3,64:2")
        size, epochs = int(match.group(1)), int(match.group(2))
        if size < MIN_SIZE:
            raise ValueError(f"schedule stage {part.strip()!r}: the size must be >= {MIN_SIZE} px")
        if epochs < 1:
            raise ValueError(f"schedule stage {part.strip()!r}: the epoch count must be >= 1")
        stages.append((size, epochs))
    return tuple(stages)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m workbook.train`` (no checks beyond types)."""
    parser = argparse.ArgumentParser(
        prog="python -m workbook.train", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    data = parser.add_argument_group("data and model")
    data.add_argument("--data", default=None, metavar="NAME",
                      help="data set: synthetic, synthetic-tiny, synthetic-large, or real 160/320/full "
                           "(default: $WORKBOOK_DATA, else synthetic)")
    data.add_argument("--variant", default=None, choices=SUBSET_VARIANTS,
                      help="images per class, as in the notebooks: tiny 8/4, small 150/50, large 700/100 "
                           "(train/val), all (real data only); default: every image of real Imagenette, "
                           "the named variant of the embedded set")
    data.add_argument("--arch", default="small_xresnet", choices=ARCHS,
                      help="model, from random weights (default: %(default)s, about 1.3 M parameters; "
                           "xresnet50 is the full-size model for a GPU)")
    data.add_argument("--bs", type=int, default=64, help="batch size (default: %(default)s)")
    data.add_argument("--workers", type=int, default=None,
                      help=f"DataLoader worker processes (default: 0 on the CPU, where they would compete with "
                           f"training for the cores; on CUDA {CUDA_WORKERS}, at most the CPU count)")

    sched = parser.add_argument_group("image size and schedule")
    sched.add_argument("--size", type=int, default=None,
                       help="image side in px for a run at one size (default: 64)")
    sched.add_argument("--epochs", type=int, default=None, help="epochs at that size (default: 5)")
    sched.add_argument("--schedule", default=None, metavar="SIZE:EPOCHS,...",
                       help="progressive resizing instead of --size/--epochs, e.g. 32:3,64:2 "
                            "(3 epochs at 32 px, then 2 at 64 px; one one-cycle fit per stage)")
    sched.add_argument("--lr", type=float, default=1e-2,
                       help="maximum learning rate of each one-cycle fit (default: %(default)g)")

    reg = parser.add_argument_group("regularisation and evaluation")
    mix = reg.add_mutually_exclusive_group()
    mix.add_argument("--mixup", type=float, default=None, metavar="ALPHA",
                     help="use fastai's MixUp(ALPHA); the leaderboard's long runs use 0.2")
    mix.add_argument("--cutmix", type=float, default=None, metavar="ALPHA",
                     help="use fastai's CutMix(ALPHA) instead (typically 1.0)")
    reg.add_argument("--label-smoothing", type=float, default=0.0, metavar="EPS",
                     help="train with LabelSmoothingCrossEntropy(EPS), EPS in [0, 1) (default: 0, plain "
                          "cross-entropy)")
    reg.add_argument("--tta", action="store_true", help="report the accuracy of learn.tta() at the end")

    run = parser.add_argument_group("run")
    run.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                     help="where to train (default: %(default)s: cuda when available, else cpu)")
    run.add_argument("--precision", default="auto", choices=PRECISIONS,
                     help="number format of training (default: %(default)s: on CUDA mixed precision, bf16 "
                          "where the GPU supports it, else fp16 (fastai's to_bf16 / to_fp16); fp32 on the CPU)")
    run.add_argument("--fp16", action="store_true", help="the same as --precision fp16 (cuda only)")
    run.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    run.add_argument("--out", default=None, metavar="DIR",
                     help="output folder for results.csv, summary.json and curves.png "
                          "(default: $WORKBOOK_CACHE/train/<data>)")
    run.add_argument("--fast", action="store_true",
                     help="reduced budget: one short epoch per stage (also set by WORKBOOK_FAST=1)")
    run.add_argument("--quiet", action="store_true", help="no progress bar; print only the summary")
    return parser


def parse_config(argv=None, *, cuda_available: bool | None = None, fast: bool | None = None,
                 bf16_supported: bool | None = None, cpu_count: int | None = None) -> TrainConfig:
    """Parse and check the command line; no data is loaded and nothing is trained.

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).
        cuda_available: whether CUDA can be used (default: ``torch.cuda.is_available()``); tests pass it.
        fast: force the WORKBOOK_FAST budget on or off (default: the environment variable or --fast).
        bf16_supported: whether the GPU computes in bf16 (default: ``torch.cuda.is_bf16_supported()``).
        cpu_count: CPU cores for the default number of workers on CUDA (default: ``os.cpu_count()``).

    Returns:
        The checked TrainConfig, with ``device`` resolved to "cpu" or "cuda".

    Raises:
        SystemExit: status 2 after argparse prints the usage and a one-line error (bad argument).
    """
    parser = build_parser()
    args = parser.parse_args(argv)

    if args.data is None:
        try:
            args.data = data_name()
        except ValueError as error:
            parser.error(str(error))
    if args.data not in DATA_NAMES:
        parser.error(f"unknown data set {args.data!r}; choose one of: {', '.join(DATA_NAMES)}")
    data = DATA_NAMES[args.data]
    if args.variant is not None and data in SYNTHETIC_NAMES and data != "synthetic" and \
            args.variant != SYNTHETIC_NAMES[data]:
        parser.error(f"--data {args.data} is the {SYNTHETIC_NAMES[data]} variant; use --data synthetic "
                     f"--variant {args.variant}")
    if args.variant == "all" and data in SYNTHETIC_NAMES:
        parser.error("--variant all is for real Imagenette; the embedded set has tiny, small and large")

    if args.schedule is not None:
        if args.size is not None or args.epochs is not None:
            parser.error("--schedule replaces --size and --epochs; give either the schedule or size/epochs")
        try:
            stages = parse_schedule(args.schedule)
        except ValueError as error:
            parser.error(str(error))
    else:
        size = 64 if args.size is None else args.size
        epochs = 5 if args.epochs is None else args.epochs
        if size < MIN_SIZE:
            parser.error(f"--size must be >= {MIN_SIZE} px, got {size}")
        if epochs < 1:
            parser.error(f"--epochs must be >= 1, got {epochs}")
        stages = ((size, epochs),)

    if args.bs < 1:
        parser.error(f"--bs must be >= 1, got {args.bs}")
    if args.workers is not None and args.workers < 0:
        parser.error(f"--workers must be >= 0, got {args.workers}")
    if not (math.isfinite(args.lr) and args.lr > 0):
        parser.error(f"--lr must be a positive number, got {args.lr}")
    for flag, alpha in (("--mixup", args.mixup), ("--cutmix", args.cutmix)):
        if alpha is not None and not (math.isfinite(alpha) and alpha > 0):
            parser.error(f"{flag} ALPHA must be > 0 (the Beta(alpha, alpha) parameter), got {alpha}; "
                         f"leave {flag} out to train without it")
    eps = args.label_smoothing
    if not (math.isfinite(eps) and 0.0 <= eps < 1.0):
        parser.error(f"--label-smoothing EPS must be in [0, 1), got {eps}")
    if args.seed < 0:
        parser.error(f"--seed must be >= 0, got {args.seed}")

    if cuda_available is None:
        import torch
        cuda_available = torch.cuda.is_available()
    device = args.device
    if device == "auto":
        device = "cuda" if cuda_available else "cpu"
    elif device == "cuda" and not cuda_available:
        parser.error("--device cuda was requested but CUDA is not available here (torch.cuda.is_available() "
                     "is False); use --device cpu or auto")
    if args.fp16 and device != "cuda":
        parser.error("--fp16 needs --device cuda (mixed precision is not used on the CPU here)")
    precision = "fp16" if args.fp16 else args.precision
    if precision in ("fp16", "bf16") and device != "cuda":
        parser.error(f"--precision {precision} needs --device cuda (mixed precision is not used on the CPU here)")
    if precision == "auto":
        if device == "cuda" and bf16_supported is None:
            import torch
            bf16_supported = torch.cuda.is_bf16_supported()
        precision = "fp32" if device == "cpu" else ("bf16" if bf16_supported else "fp16")
    workers = args.workers
    if workers is None:
        workers = 0 if device == "cpu" else min(CUDA_WORKERS, cpu_count or os.cpu_count() or 1)

    if fast is None:
        from workbook.models import fast_mode
        fast = args.fast or fast_mode()
    if args.out is not None:
        out = Path(args.out)
    else:
        from workbook.cache import cache_dir
        out = cache_dir() / "train" / args.data
    return TrainConfig(data=data, variant=args.variant, stages=stages, bs=args.bs, lr=args.lr, arch=args.arch,
                       mixup=args.mixup, cutmix=args.cutmix, label_smoothing=eps, tta=args.tta, device=device,
                       precision=precision, seed=args.seed, workers=workers, out=out, fast=bool(fast),
                       quiet=args.quiet)


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------
def _make_model(arch: str, n_out: int):
    from fastai.vision.models import xresnet

    from workbook.models import small_xresnet

    if arch == "small_xresnet":
        return small_xresnet(n_out=n_out)
    return getattr(xresnet, arch)(n_out=n_out)


def regularisation(config: TrainConfig) -> tuple:
    """The callbacks and loss function that `config` asks for.

    Args:
        config: a TrainConfig.

    Returns:
        ``(cbs, loss_func)``: ``[MixUp(alpha)]``, ``[CutMix(alpha)]`` or ``[]``, and
        ``LabelSmoothingCrossEntropy(eps)`` or None (fastai's default cross-entropy).
    """
    from fastai.callback.mixup import CutMix, MixUp
    from fastai.losses import LabelSmoothingCrossEntropy

    cbs = []
    if config.mixup is not None:
        cbs.append(MixUp(config.mixup))
    if config.cutmix is not None:
        cbs.append(CutMix(config.cutmix))
    loss_func = LabelSmoothingCrossEntropy(eps=config.label_smoothing) if config.label_smoothing > 0 else None
    return cbs, loss_func


def _silent(*args, **kwargs) -> None:
    return None


def train(config: TrainConfig) -> RunResult:
    """Run the schedule of `config` and return what was measured (writes nothing).

    Each stage builds DataLoaders at its size (``get_dls``), swaps them into the same Learner and
    runs ``fit_one_cycle(stage epochs, config.lr)``; Mixup/CutMix callbacks are active in every
    stage.  With ``config.tta`` the final model's ``learn.tta()`` accuracy is measured on the
    validation set at the last stage's size.

    Args:
        config: a TrainConfig (from parse_config).

    Returns:
        The RunResult.
    """
    import torch
    from fastai.callback.core import Callback
    from fastai.torch_core import set_seed

    from workbook.data import describe_data, get_dls, get_imagenette
    from workbook.models import make_learner, training_budget

    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig (see parse_config), got {type(config).__name__}")

    class _EpochClock(Callback):
        "Wall time and smoothed training loss of every epoch (after the Recorder's own after_epoch)."
        order = 100

        def before_fit(self):
            self.times, self.train_losses = [], []

        def before_epoch(self):
            self.start = time.perf_counter()

        def after_epoch(self):
            self.times.append(time.perf_counter() - self.start)
            # The Recorder's "train_loss" column is this value, but it skips it when the training
            # phase is cut short (WORKBOOK_FAST's ShortEpochCallback), so read it here.
            self.train_losses.append(float(self.learn.recorder.smooth_loss.value))

    device = torch.device(config.device)
    # Real Imagenette: every image (the notebooks' default is a 1,500-image sample).
    variant = config.variant or ("all" if config.data in REAL_IMAGENETTE else None)
    path = get_imagenette(config.data, variant=variant)
    cbs, loss_func = regularisation(config)
    clock = _EpochClock()

    def dls_at(size):
        return get_dls(path, size, bs=config.bs, seed=config.seed, num_workers=config.workers, device=device)

    first_size = config.stages[0][0]
    dls = dls_at(first_size)
    set_seed(config.seed, reproducible=True)      # the model's initial weights come from the seed
    model = _make_model(config.arch, dls.c)
    config.out.mkdir(parents=True, exist_ok=True)
    learn = make_learner(dls, model=model, loss_func=loss_func, cbs=cbs + [clock], seed=config.seed,
                         path=config.out)
    if config.precision == "fp16":
        learn = learn.to_fp16()
    elif config.precision == "bf16":
        learn = learn.to_bf16()
    data = {"name": config.data, "folder": str(path), "description": describe_data(path),
            "n_train": len(dls.train_ds), "n_valid": len(dls.valid_ds)}
    if config.quiet:
        learn.logger = _silent   # the Recorder would print each epoch's raw values instead of the bar's table

    rows, batch_losses, position = [], [], 0.0
    start = time.perf_counter()
    for stage, (size, stage_epochs) in enumerate(config.stages):
        if stage > 0:
            learn.dls = dls_at(size)
        budget = training_budget(stage_epochs, fast=config.fast)
        if not config.quiet:
            print(f"stage {stage + 1}/{len(config.stages)}: {budget.epochs} epoch(s) at {size} px"
                  + (" (WORKBOOK_FAST: 20% of the batches)" if budget.fast else ""), flush=True)
        if config.quiet:
            with learn.no_bar():
                learn.fit_one_cycle(budget.epochs, config.lr, cbs=budget.cbs)
        else:
            learn.fit_one_cycle(budget.epochs, config.lr, cbs=budget.cbs)
        losses = [float(v) for v in learn.recorder.losses]
        batch_losses += [(position + budget.epochs * (i + 1) / len(losses), v) for i, v in enumerate(losses)]
        position += budget.epochs
        for values, seconds, train_loss in zip(learn.recorder.values, clock.times, clock.train_losses):
            valid_loss, acc = (float(v) for v in values[-2:])    # [train_loss,] valid_loss, accuracy
            rows.append(EpochRow(epoch=len(rows) + 1, size=size, train_loss=train_loss, valid_loss=valid_loss,
                                 accuracy=acc, time_s=seconds))
    tta_accuracy = None
    if config.tta:
        if config.quiet:
            with learn.no_bar():
                preds, targets = learn.tta()
        else:
            preds, targets = learn.tta()
        tta_accuracy = float((preds.argmax(dim=1) == targets).float().mean())
    total = time.perf_counter() - start
    # Class probabilities of the final model on every validation image (outside the timed run), so
    # that runs can be compared image by image or combined into an ensemble afterwards.
    with learn.no_bar():
        probs, targets = learn.get_preds()
    files = [str(Path(f).relative_to(path)) for f in learn.dls.valid_ds.items]
    return RunResult(config=config, rows=rows, final_accuracy=rows[-1].accuracy, tta_accuracy=tta_accuracy,
                     total_time_s=total, batch_losses=batch_losses, data=data,
                     predictions={"probs": probs.float().cpu().numpy(), "targets": targets.cpu().numpy(),
                                  "files": np.array(files), "vocab": np.array(list(learn.dls.vocab))})


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------
def write_results(result: RunResult, out: Path | None = None) -> dict:
    """Write results.csv, summary.json, curves.png and predictions.npz into `out` (default: the config's folder).

    results.csv has the columns RESULT_COLUMNS: one row per epoch (``tta_accuracy`` empty), then
    a row whose ``epoch`` is "final", with the final validation accuracy, the TTA accuracy (empty
    without --tta), the last size and the total wall time.

    predictions.npz (numpy's format: ``np.load``) holds the arrays of ``result.predictions``.

    Returns:
        {"csv": path, "json": path, "png": path, "npz": path} ("npz" only when predictions were measured).
    """
    out = Path(result.config.out if out is None else out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "results.csv", "json": out / "summary.json", "png": out / "curves.png"}
    if result.predictions:
        paths["npz"] = out / "predictions.npz"
        np.savez_compressed(paths["npz"], **result.predictions)
    with open(paths["csv"], "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(RESULT_COLUMNS)
        for r in result.rows:
            writer.writerow([r.epoch, r.size, f"{r.train_loss:.6f}", f"{r.valid_loss:.6f}", f"{r.accuracy:.6f}", "",
                             f"{r.time_s:.3f}"])
        tta = "" if result.tta_accuracy is None else f"{result.tta_accuracy:.6f}"
        writer.writerow(["final", result.rows[-1].size, f"{result.rows[-1].train_loss:.6f}",
                         f"{result.rows[-1].valid_loss:.6f}", f"{result.final_accuracy:.6f}", tta,
                         f"{result.total_time_s:.3f}"])
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(result.config).items()}
    summary = {"config": config, "description": result.config.describe(), "data": result.data,
               "final_accuracy": result.final_accuracy,
               "tta_accuracy": result.tta_accuracy, "total_time_s": result.total_time_s,
               "epochs": [asdict(r) for r in result.rows]}
    paths["json"].write_text(json.dumps(summary, indent=2) + "\n")
    from workbook.plots import curves_figure  # here: plots imports fastai, which --help and argument errors do not need

    fig = curves_figure(result)
    fig.savefig(paths["png"])
    return paths


def _print_summary(result: RunResult, paths: dict) -> None:
    print(f"\n{result.config.describe()}")
    if result.data:
        print(f"data: {result.data['description']}")
    print(f"{'epoch':>5} {'size':>5} {'train_loss':>10} {'valid_loss':>10} {'accuracy':>8} {'time_s':>7}")
    for r in result.rows:
        print(f"{r.epoch:>5} {r.size:>5} {r.train_loss:>10.4f} {r.valid_loss:>10.4f} {r.accuracy:>8.4f} {r.time_s:>7.1f}")
    line = f"final accuracy {result.final_accuracy:.4f}"
    if result.tta_accuracy is not None:
        line += f", with TTA {result.tta_accuracy:.4f}"
    print(f"{line}; {result.total_time_s:.1f} s")
    print(f"wrote {paths['csv']}, " + ", ".join(p.name for key, p in paths.items() if key != "csv"))


def _last_line(error: Exception) -> str:
    """The error's message, or for an error re-raised from a DataLoader worker (whose message is
    the worker's whole traceback) the traceback's last line without the exception's type."""
    lines = [line for line in str(error).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("Caught "):
        return lines[-1].split(": ", 1)[-1]
    return " ".join(lines)


def main(argv=None) -> int:
    """Command-line entry point: parse, train, write the results, print a summary.

    Returns:
        0 on success, 1 when the data cannot be obtained (e.g. real Imagenette offline) or an image
        cannot be read (the message names the file).  Bad arguments exit with status 2 through
        argparse (SystemExit).
    """
    config = parse_config(argv)
    from workbook.data import CorruptImageError  # after the arguments: it imports fastai

    try:
        result = train(config)
    except (ConnectionError, FileNotFoundError, CorruptImageError) as error:
        print(f"python -m workbook.train: error: {_last_line(error)}", file=sys.stderr)
        return 1
    paths = write_results(result)
    _print_summary(result, paths)
    return 0


if __name__ == "__main__":
    sys.exit(main())

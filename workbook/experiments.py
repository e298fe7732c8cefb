"""Stored experiments: runs longer than a notebook's budget, over several seeds, kept as data.

``python -m workbook.experiments --list`` names the experiments; ``python -m workbook.experiments NAME``
runs one (every arm, every declared seed, one after the other, on one CPU thread by default) and writes
``workbook/results/NAME.json``; ``python -m workbook.experiments NAME --summary`` prints what the stored
file says (mean ± standard error over seeds, and the verdicts of :mod:`workbook.seed_statistics`).

Each experiment is declared once, in :data:`EXPERIMENTS`: its arms are complete training configurations
(every setting spelled out, defaults included, see :data:`DEFAULT_RUN`), and its comparisons name the
pairs of arms the notebook discusses. The stored file holds that exact configuration and its hash, the
seeds, the data set (name, folder name, image counts), the code version (git commit, a dirty flag and a
hash of the modules a run depends on), the machine (CPU, GPU, torch version, threads) and the wall time,
then per arm and seed: the validation accuracy after each epoch, the final accuracy, each validation
image's correctness, calibration figures and, where asked for, what the model does on its training
images and its accuracy with fastai's test-time augmentation (per image too).
``tests/test_experiments.py`` fails when a stored file's configuration hash differs from the declared
one (the code would no longer produce what is stored) and when a notebook's rendered summary differs
from what the stored file gives.

The notebooks load these files with :func:`load` and show :func:`report_markdown`; they live inside the
package so that every notebook (master, release, and the grader's sandbox) can read them.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from workbook.seed_statistics import VERDICT_RULE, mean_se, paired_difference, paired_over_images, verdict

__all__ = ["DEFAULT_RUN", "EXPERIMENTS", "Experiment", "RESULTS_DIR", "arm_values", "load", "report_markdown", "run_experiment",
           "summarize", "train_once", "Cutout", "plain_cnn"]

RESULTS_DIR = Path(__file__).resolve().parent / "results"
# The modules whose code decides what a run computes; their hash is stored as the code version.
CODE_FILES = ("experiments.py", "models.py", "data.py", "synthetic.py", "cache.py", "seed_statistics.py")

DEFAULT_RUN = {
    "data": "synthetic",          # workbook.data.get_imagenette name (the embedded set)
    "label_noise": 0.0,           # share of training images in a wrong class folder
    "train_per_class": None,      # None: every training image; n: n per class folder (evenly spaced)
    "model": "small_xresnet",     # or "plain_cnn": convolutions without batch normalization
    "sizes": [32] * 5,            # image side of each epoch; a run of equal sizes is one fit_one_cycle stage
    "lr": 1e-2,
    "bs": 64,
    "normalize": "data",          # get_dls: "data", "imagenet" or None
    "augment": True,              # fastai's aug_transforms on the training batches
    "mixup": None,                # fastai MixUp(alpha)
    "cutmix": None,               # fastai CutMix(alpha)
    "cutout": None,               # Cutout: side of the square as a share of the image side
    "label_smoothing": 0.0,       # fastai LabelSmoothingCrossEntropy(eps); 0 = plain cross-entropy
    "evaluate_with": [],          # extra validations of the trained model with other input statistics
    "train_eval": False,          # predict the (unaugmented) training images too
    "epoch_validation": 1.0,      # share of validation images scored after each epoch (the final score uses all)
    "tta": False,                 # also score the final model with fastai's learn.tta()
}
# Settings added after the first results were stored: an arm's configuration (and so its hash) names
# them only when they differ from their default, so the results stored before them still match.
ADDED_LATER = ("cutmix", "tta")


def _run(**changes) -> dict:
    unknown = set(changes) - set(DEFAULT_RUN)
    if unknown:
        raise ValueError(f"unknown run settings {sorted(unknown)}; known: {sorted(DEFAULT_RUN)}")
    return {**DEFAULT_RUN, **changes}


@dataclass(frozen=True)
class Experiment:
    """One stored experiment: named arms (full run configurations), the seeds, and the comparisons drawn.

    Attributes:
        name: file name of the stored results.
        notebook: the notebook that shows it.
        question: what it measures, in one sentence.
        arms: arm name -> run configuration (a :func:`_run` dict).
        comparisons: (A, B) pairs of arm names; the verdicts compare A - B.
        metrics: (key, label, higher_is_better) of the figures the report shows.
        seeds: the seeds every arm runs with.
        within_arm: (key A, key B, label) pairs of metrics compared inside every arm, paired by seed (and
            over images when both have a per-image record), e.g. accuracy with and without TTA.
    """
    name: str
    notebook: str
    question: str
    arms: dict
    comparisons: tuple
    metrics: tuple = (("accuracy", "validation accuracy", True),)
    seeds: tuple = (0, 1, 2)
    within_arm: tuple = ()

    def config(self) -> dict:
        """The exact configuration: everything that decides what the stored numbers are."""
        arms = {arm: {key: value for key, value in config.items()
                      if not (key in ADDED_LATER and value == DEFAULT_RUN[key])}
                for arm, config in self.arms.items()}
        return {"name": self.name, "arms": arms, "comparisons": [list(c) for c in self.comparisons],
                "seeds": list(self.seeds)}

    def config_hash(self) -> str:
        """SHA-256 of the configuration as canonical JSON."""
        return hashlib.sha256(json.dumps(self.config(), sort_keys=True).encode()).hexdigest()


_CALIBRATION = (("accuracy", "validation accuracy", True), ("ece", "ECE", False),
                ("mean_top_p", "mean top probability", None), ("share_top_p_over_0.9", "share top p > 0.9", None))

EXPERIMENTS = {e.name: e for e in (
    Experiment(
        "normalization", "02_normalization",
        "small_xresnet (batch normalization after every convolution), 3 epochs at 32 px, without and with "
        "Normalize; the normalized model is also validated with ImageNet's statistics and with none",
        {"no Normalize": _run(sizes=[32] * 3, normalize=None, epoch_validation=0.1),
         "Normalize": _run(sizes=[32] * 3, normalize="data", evaluate_with=["imagenet", None], epoch_validation=0.1)},
        (("Normalize", "no Normalize"),),
        metrics=(("accuracy", "validation accuracy", True), ("accuracy_fed_imagenet", "fed ImageNet statistics", True),
                 ("accuracy_fed_none", "fed unnormalized images", True))),
    Experiment(
        "normalization_no_bn", "02_normalization",
        "a plain network without batch normalization (plain_cnn), 3 epochs at 32 px, lr 3e-3, without and "
        "with Normalize; the normalized model is also validated with ImageNet's statistics and with none",
        {"no Normalize": _run(model="plain_cnn", sizes=[32] * 3, lr=3e-3, normalize=None, epoch_validation=0.1),
         "Normalize": _run(model="plain_cnn", sizes=[32] * 3, lr=3e-3, normalize="data",
                           evaluate_with=["imagenet", None], epoch_validation=0.1)},
        (("Normalize", "no Normalize"),),
        metrics=(("accuracy", "validation accuracy", True), ("accuracy_fed_imagenet", "fed ImageNet statistics", True),
                 ("accuracy_fed_none", "fed unnormalized images", True))),
    Experiment(
        "progressive_resizing", "03_progressive_resizing",
        "a third of the training images (50 per class), 3 epochs: fixed 64 px, progressive 32→48→64 px, and "
        "fixed 64 px for 2 epochs (about the progressive run's time)",
        {"fixed 64 px, 3 epochs": _run(train_per_class=50, sizes=[64] * 3, epoch_validation=0.1),
         "progressive 32→64, 3 epochs": _run(train_per_class=50, sizes=[32, 48, 64], epoch_validation=0.1),
         "fixed 64 px, 2 epochs": _run(train_per_class=50, sizes=[64] * 2, epoch_validation=0.1)},
        (("progressive 32→64, 3 epochs", "fixed 64 px, 3 epochs"),
         ("progressive 32→64, 3 epochs", "fixed 64 px, 2 epochs")),
        metrics=(("accuracy", "validation accuracy", True), ("seconds", "training time (s)", None))),
    Experiment(
        "mixup_budget", "05_mixup",
        "small_xresnet at 32 px, 100 training images per class, with and without fastai's MixUp(0.4), "
        "one-cycle budgets of 2 and 6 epochs",
        {"no Mixup, 2 epochs": _run(train_per_class=100, sizes=[32] * 2, epoch_validation=0.1),
         "Mixup, 2 epochs": _run(train_per_class=100, sizes=[32] * 2, mixup=0.4, epoch_validation=0.1),
         "no Mixup, 6 epochs": _run(train_per_class=100, sizes=[32] * 6),
         "Mixup, 6 epochs": _run(train_per_class=100, sizes=[32] * 6, mixup=0.4)},
        (("Mixup, 2 epochs", "no Mixup, 2 epochs"), ("Mixup, 6 epochs", "no Mixup, 6 epochs")),
        metrics=_CALIBRATION),
    Experiment(
        "cutout", "05_mixup",
        "small_xresnet at 32 px, 100 training images per class, 3 epochs, without and with Cutout (one "
        "zeroed square of half the image side per training image, DeVries & Taylor 2017)",
        {"no Cutout": _run(train_per_class=100, sizes=[32] * 3, epoch_validation=0.1),
         "Cutout": _run(train_per_class=100, sizes=[32] * 3, cutout=0.5, epoch_validation=0.1)},
        (("Cutout", "no Cutout"),), metrics=_CALIBRATION),
    Experiment(
        "label_smoothing_noisy", "06_label_smoothing",
        "the regime where plain cross-entropy memorises: 30 training images per class, 20 % of them in a "
        "wrong class folder, no augmentation, 15 epochs at 32 px; eps = 0 against eps = 0.1",
        {"eps = 0": _run(label_noise=0.2, train_per_class=30, augment=False, sizes=[32] * 15, bs=50,
                         train_eval=True, epoch_validation=0.1),
         "eps = 0.1": _run(label_noise=0.2, train_per_class=30, augment=False, sizes=[32] * 15, bs=50,
                           label_smoothing=0.1, train_eval=True, epoch_validation=0.1)},
        (("eps = 0.1", "eps = 0"),),
        metrics=(*_CALIBRATION, ("wrong_labels_reproduced", "wrong training labels reproduced", False),
                 ("clean_train_accuracy", "correctly labelled training images fitted", None))),
    Experiment(
        "mixup_epochs", "05_mixup",
        "where Mixup should pay off: small_xresnet at 32 px, 30 training images per class (300 in all), "
        "without and with fastai's MixUp(0.4), one-cycle budgets of 5, 15, 40 and 80 epochs",
        {f"{name}, {epochs} epochs": _run(train_per_class=30, sizes=[32] * epochs, mixup=mixup, train_eval=True,
                                          epoch_validation=0.1)
         for epochs in (5, 15, 40, 80) for name, mixup in (("no Mixup", None), ("Mixup", 0.4))},
        tuple((f"Mixup, {epochs} epochs", f"no Mixup, {epochs} epochs") for epochs in (5, 15, 40, 80)),
        metrics=(*_CALIBRATION, ("train_accuracy_given_labels", "training images fitted (unaugmented)", None))),
    Experiment(
        "cutmix", "05_mixup",
        "the short budget of this notebook over three seeds: small_xresnet, 2 epochs at 32 px on every "
        "training image (1,500), no mixing, fastai's MixUp(0.4) and fastai's CutMix(1.0)",
        {"no mixing": _run(sizes=[32] * 2),
         "Mixup": _run(sizes=[32] * 2, mixup=0.4),
         "CutMix": _run(sizes=[32] * 2, cutmix=1.0)},
        (("Mixup", "no mixing"), ("CutMix", "no mixing"), ("CutMix", "Mixup")),
        metrics=_CALIBRATION),
    Experiment(
        "label_smoothing_short", "06_label_smoothing",
        "this notebook's short run over three seeds: small_xresnet, every training image (1,500), fastai's "
        "default augmentations, 4 epochs at 32 px; clean labels and 20 % wrong labels, eps = 0 against 0.1",
        {"clean, eps = 0": _run(sizes=[32] * 4),
         "clean, eps = 0.1": _run(sizes=[32] * 4, label_smoothing=0.1),
         "20 % wrong, eps = 0": _run(label_noise=0.2, sizes=[32] * 4),
         "20 % wrong, eps = 0.1": _run(label_noise=0.2, sizes=[32] * 4, label_smoothing=0.1)},
        (("clean, eps = 0.1", "clean, eps = 0"), ("20 % wrong, eps = 0.1", "20 % wrong, eps = 0")),
        metrics=_CALIBRATION),
    Experiment(
        "long_training", "07_long_training",
        "the four configurations of the long-training script over three seeds: small_xresnet, every "
        "training image (1,500), 5 epochs at 32 px; baseline, +MixUp(0.4), +label smoothing (eps = 0.1), "
        "+both; each final model also scored with TTA",
        {"baseline": _run(sizes=[32] * 5, tta=True),
         "+Mixup": _run(sizes=[32] * 5, mixup=0.4, tta=True),
         "+label smoothing": _run(sizes=[32] * 5, label_smoothing=0.1, tta=True),
         "+both": _run(sizes=[32] * 5, mixup=0.4, label_smoothing=0.1, tta=True)},
        (("+Mixup", "baseline"), ("+label smoothing", "baseline"), ("+both", "baseline"), ("+both", "+Mixup")),
        metrics=(("accuracy", "validation accuracy", True), ("tta_accuracy", "accuracy with TTA", True),
                 ("tta_gain", "TTA gain", None), ("seconds", "training time (s)", None)),
        within_arm=(("tta_accuracy", "accuracy", "with TTA"),)),
)}


# --------------------------------------------------------------------------------------------------
# Training one arm with one seed

def plain_cnn(n_out: int = 10, c_in: int = 3):
    """Four 3x3 convolutions with ReLU and no batch normalization, then average pooling and a linear layer.

    He-initialised (fastai's ``init_cnn``), i.e. for inputs of unit scale: the situation where input
    statistics reach every layer, because nothing re-normalizes the activations.
    """
    import torch.nn as nn
    from fastai.vision.models.xresnet import init_cnn

    widths = (c_in, 32, 64, 128, 128)
    layers = []
    for i, (a, b) in enumerate(zip(widths, widths[1:])):
        layers += [nn.Conv2d(a, b, 3, stride=1 if i == 0 else 2, padding=1), nn.ReLU()]
    model = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(widths[-1], n_out))
    init_cnn(model)
    return model


def _cutout_callback():
    from fastai.callback.core import Callback

    class Cutout(Callback):
        """Zero one square per training image (in the normalized space: the data set's mean colour).

        DeVries & Taylor (2017), "Improved Regularization of Convolutional Neural Networks with Cutout":
        the square's centre is uniform over the image, so part of it may fall outside. Draws come from
        the callback's own generator (`seed`).
        """
        run_valid = False
        order = 60     # after the batch transforms (normalization)

        def __init__(self, share: float = 0.5, seed: int = 0):
            if not 0 < share <= 1:
                raise ValueError(f"share must be in (0, 1], got {share!r}")
            import torch
            self.share, self.generator = share, torch.Generator().manual_seed(seed)

        def before_batch(self):
            import torch
            x = self.xb[0]
            n, _, h, w = x.shape
            side_h, side_w = max(1, round(self.share * h)), max(1, round(self.share * w))
            cy = torch.randint(0, h, (n,), generator=self.generator).to(x.device)
            cx = torch.randint(0, w, (n,), generator=self.generator).to(x.device)
            top = (cy - side_h // 2)[:, None, None]
            left = (cx - side_w // 2)[:, None, None]
            rows = torch.arange(h, device=x.device)[None, :, None]
            cols = torch.arange(w, device=x.device)[None, None, :]
            inside = (rows >= top) & (rows < top + side_h) & (cols >= left) & (cols < left + side_w)
            self.learn.xb = (x.masked_fill(inside[:, None], 0.0), *self.xb[1:])

    return Cutout


def Cutout(share: float = 0.5, seed: int = 0):  # noqa: N802  (a callback factory, used like a class)
    """A fastai callback that applies Cutout to every training batch (see :func:`_cutout_callback`)."""
    return _cutout_callback()(share, seed)


def _calibration(probs, targets, n_bins: int = 10) -> dict:
    """ECE over 10 equal-width bins of the top probability (Guo et al. 2017), and the confidence figures."""
    import torch

    confidence, predicted = probs.max(dim=1)
    correct = (predicted == targets).double()
    bins = (confidence * n_bins).long().clamp(max=n_bins - 1)
    count = torch.bincount(bins, minlength=n_bins).double()
    conf_sum = torch.bincount(bins, weights=confidence.double(), minlength=n_bins)
    acc_sum = torch.bincount(bins, weights=correct, minlength=n_bins)
    histogram = torch.histc(confidence.double(), bins=20, min=0, max=1)
    return {"ece": ((acc_sum - conf_sum).abs().sum() / len(targets)).item(),
            "mean_top_p": confidence.double().mean().item(),
            "share_top_p_over_0.9": (confidence > 0.9).double().mean().item(),
            "top_p_histogram": [int(v) for v in histogram.tolist()],
            "bin_confidence": (conf_sum / count.clamp(min=1)).tolist(),
            "bin_accuracy": (acc_sum / count.clamp(min=1)).tolist(),
            "bin_count": [int(v) for v in count.tolist()]}


def _true_labels(path: Path) -> dict:
    """{relative file path: true class folder} from the data set's labels.csv (empty when there is none)."""
    table = path / "labels.csv"
    if not table.is_file():
        return {}
    with open(table, newline="") as f:
        return {row["file"]: row["true_label"] for row in csv.DictReader(f)}


def _stages(sizes: list) -> list:
    stages = []
    for size in sizes:
        if stages and stages[-1][0] == size:
            stages[-1][1] += 1
        else:
            stages.append([size, 1])
    return stages


def _training_subset(dl, n: int):
    """A copy of the training DataLoader `dl` over `n` evenly spaced items (the same share of every class
    folder), still a *training* loader: its random augmentations keep running (``spread_subset`` alone
    gives a validation-mode copy, whose augmentations are switched off)."""
    from fastai.data.core import Datasets

    from workbook.models import spread_subset
    items = list(spread_subset(dl, n).items)
    return dl.new(Datasets(tls=[tl._new(items, split_idx=0) for tl in dl.dataset.tls]))


def train_once(config: dict, seed: int) -> dict:
    """Train one arm with one seed and measure it.

    Args:
        config: a complete run configuration (see :data:`DEFAULT_RUN`).
        seed: the seed of initialisation, augmentation and batch order (``make_learner(seed=...)``) and of
            the callbacks' own generators.

    Returns:
        Plain data: accuracy, epoch_accuracy, correct (a 0/1 string over the validation images), seconds,
        calibration figures, and the extra measurements the configuration asks for.
    """
    from fastai.callback.mixup import CutMix, MixUp
    from fastai.losses import LabelSmoothingCrossEntropyFlat

    from workbook.data import get_dls, get_imagenette
    from workbook.models import ShortValidation, make_learner

    missing = set(DEFAULT_RUN) - set(config)
    if missing:
        raise ValueError(f"run configuration lacks {sorted(missing)}; build it with _run(...)")
    path = get_imagenette(config["data"], label_noise=config["label_noise"])
    stages = _stages(config["sizes"])

    def make_dls(size):
        dls = get_dls(path, size, bs=config["bs"], normalize=config["normalize"], augment=config["augment"],
                      seed=seed)
        if config["train_per_class"] is not None:
            dls.loaders[0] = _training_subset(dls.train, config["train_per_class"] * dls.c)
        return dls

    dls = make_dls(stages[0][0])
    model = plain_cnn(dls.c) if config["model"] == "plain_cnn" else None
    if config["model"] not in ("small_xresnet", "plain_cnn"):
        raise ValueError(f"unknown model {config['model']!r}; use 'small_xresnet' or 'plain_cnn'")
    cbs = []
    if config["mixup"] is not None:
        cbs.append(MixUp(config["mixup"]))
    if config["cutout"] is not None:
        cbs.append(Cutout(config["cutout"], seed))
    if config["cutmix"] is not None:
        cbs.append(CutMix(config["cutmix"]))
    loss = LabelSmoothingCrossEntropyFlat(eps=config["label_smoothing"]) if config["label_smoothing"] else None
    learn = make_learner(dls, model=model, loss_func=loss, cbs=cbs, seed=seed)
    fit_cbs = [ShortValidation(config["epoch_validation"])] if config["epoch_validation"] < 1 else []
    epoch_accuracy = []
    start = time.perf_counter()
    with learn.no_bar(), learn.no_logging():
        for index, (size, epochs) in enumerate(stages):
            if index:
                learn.dls = make_dls(size)
            learn.fit_one_cycle(epochs, config["lr"], cbs=fit_cbs)
            epoch_accuracy += [float(values[-1]) for values in learn.recorder.values]
        seconds = time.perf_counter() - start
        probs, targets = learn.get_preds(dl=learn.dls.valid)
        result = {"seconds": seconds, "epoch_accuracy": epoch_accuracy}
        result["accuracy"], result["correct"] = _scored(probs, targets)
        result.update(_calibration(probs.float(), targets))
        if config["tta"]:
            # fastai's defaults: 0.75 x the mean of 4 passes with the training augmentations + 0.25 x the
            # plain prediction (beta=0.25), as `python -m workbook.train --tta` measures it.
            result["tta_accuracy"], result["tta_correct"] = _scored(*learn.tta(dl=learn.dls.valid))
            result["tta_gain"] = result["tta_accuracy"] - result["accuracy"]
        for other in config["evaluate_with"]:
            other_dls = get_dls(path, stages[-1][0], bs=config["bs"], normalize=other, augment=False, seed=seed)
            result[f"accuracy_fed_{other if other is not None else 'none'}"] = float(
                learn.validate(dl=other_dls.valid)[1])
        if config["train_eval"]:
            result.update(_training_set_figures(learn, path))
    return result


def _scored(probs, targets) -> tuple[float, str]:
    """The accuracy of `probs` and the stored per-image record: "1" for each image it gets right, else "0"."""
    right = (probs.argmax(dim=1) == targets).tolist()
    return sum(right) / len(right), "".join("1" if ok else "0" for ok in right)


def _training_set_figures(learn, path: Path) -> dict:
    """What the model predicts for its own (unaugmented) training images, wrong labels apart."""
    items = list(learn.dls.train.items)
    plain = learn.dls.test_dl(items, with_labels=True)
    probs, given = learn.get_preds(dl=plain)
    predicted = probs.argmax(dim=1)
    vocab = list(learn.dls.vocab)
    truth = _true_labels(path)
    true_index = [vocab.index(truth.get(Path(f).relative_to(path).as_posix(), Path(f).parent.name)) for f in items]
    import torch
    true_index = torch.tensor(true_index)
    wrong = given != true_index
    n_wrong = int(wrong.sum())
    figures = {"train_accuracy_given_labels": (predicted == given).double().mean().item(),
               "n_wrong_labels": n_wrong,
               "clean_train_accuracy": (predicted[~wrong] == given[~wrong]).double().mean().item()}
    if n_wrong:
        figures["wrong_labels_reproduced"] = (predicted[wrong] == given[wrong]).double().mean().item()
        figures["wrong_labels_true_class"] = (predicted[wrong] == true_index[wrong]).double().mean().item()
    return figures


# --------------------------------------------------------------------------------------------------
# Running and storing

def _code_version() -> dict:
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for name in CODE_FILES:
        digest.update(name.encode() + b"\0" + (package / name).read_bytes())
    version = {"code_sha256": digest.hexdigest(), "files": list(CODE_FILES)}
    try:
        def git(*args):
            return subprocess.run(["git", *args], cwd=package, capture_output=True, text=True, timeout=10,
                                  check=True).stdout.strip()
        version["git_commit"] = git("rev-parse", "HEAD")
        version["git_dirty"] = bool(git("status", "--porcelain", "--", "."))
    except (OSError, subprocess.SubprocessError):
        version["git_commit"], version["git_dirty"] = None, None
    return version


def _machine() -> dict:
    import torch
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "python": platform.python_version(),
            "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def _data_description(experiment: Experiment) -> list:
    from workbook.data import get_imagenette
    seen, described = set(), []
    for config in experiment.arms.values():
        key = (config["data"], config["label_noise"])
        if key in seen:
            continue
        seen.add(key)
        path = get_imagenette(config["data"], label_noise=config["label_noise"])
        described.append({"name": config["data"], "label_noise": config["label_noise"], "folder": path.name,
                          "n_train": sum(1 for _ in (path / "train").rglob("*.JPEG")),
                          "n_val": sum(1 for _ in (path / "val").rglob("*.JPEG"))})
    return described


def result_path(name: str, folder: Path | None = None) -> Path:
    return (RESULTS_DIR if folder is None else Path(folder)) / f"{name}.json"


def _experiment(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; `python -m workbook.experiments --list` names them: "
                         f"{', '.join(EXPERIMENTS)}")
    return EXPERIMENTS[name]


def run_experiment(name: str, seeds=None, *, folder: Path | None = None, threads: int = 1, log=print) -> dict:
    """Run every arm of experiment `name` for each seed and write the results file.

    Args:
        name: a key of :data:`EXPERIMENTS`.
        seeds: the seeds (default: the experiment's declared seeds). Other seeds than the declared ones
            are stored too, but the drift test then reports the file as not matching the declaration.
        folder: where to write ``NAME.json`` (default :data:`RESULTS_DIR`).
        threads: torch threads. One thread is the fastest on a shared 2-core machine, where two threads
            wait on each other while other processes hold a core.
        log: called with one line per finished run.

    Returns:
        The stored dictionary.
    """
    import torch
    experiment = _experiment(name)
    seeds = list(experiment.seeds if seeds is None else seeds)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise ValueError(f"seeds must be non-negative ints, got {seeds!r}")
    torch.set_num_threads(threads)
    stored = {"experiment": name, "notebook": experiment.notebook, "question": experiment.question,
              "config": experiment.config(), "config_hash": experiment.config_hash(), "seeds": seeds,
              "data": _data_description(experiment), "code": _code_version(), "machine": _machine(),
              "arm_order": list(experiment.arms), "runs": {arm: {} for arm in experiment.arms}}
    start = time.perf_counter()
    for seed in seeds:
        for arm, config in experiment.arms.items():
            result = train_once(config, seed)
            stored["runs"][arm][str(seed)] = result
            log(f"{name} | {arm} | seed {seed}: accuracy {result['accuracy']:.3f} in {result['seconds']:.1f} s")
    stored["wall_seconds"] = time.perf_counter() - start
    if seeds != list(experiment.seeds):
        stored["config"]["seeds"] = seeds
    out = result_path(name, folder)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(stored, indent=1, sort_keys=True) + "\n")
    return stored


def load(name: str, folder: Path | None = None) -> dict:
    """The stored results of experiment `name`."""
    _experiment(name)
    path = result_path(name, folder)
    if not path.is_file():
        raise FileNotFoundError(f"no stored results for {name!r} at {path}; run `python -m workbook.experiments {name}`")
    return json.loads(path.read_text())


# --------------------------------------------------------------------------------------------------
# Summaries

@dataclass
class Summary:
    """Per arm and metric: an Estimate over seeds; per comparison: the paired differences and verdicts."""
    arms: dict = field(default_factory=dict)
    comparisons: list = field(default_factory=list)


def arm_values(stored: dict, arm: str, key: str) -> list:
    """The value of `key` in each stored seed's run of `arm`, in seed order (seeds without it left out)."""
    runs = stored["runs"][arm]
    return [runs[str(s)][key] for s in stored["seeds"] if key in runs[str(s)]]


def summarize(stored: dict) -> Summary:
    """Mean ± SE over seeds per arm and metric, and for each comparison the difference paired by seed
    (and, for accuracy, paired over validation images) with its verdict; then, in every arm, the
    experiment's within-arm comparisons (e.g. the same model with and without TTA)."""
    experiment = _experiment(stored["experiment"])
    summary = Summary()
    for arm in [a for a in experiment.arms if a in stored["runs"]]:        # the declared order
        summary.arms[arm] = {key: mean_se(arm_values(stored, arm, key)) for key, _, _ in experiment.metrics
                             if arm_values(stored, arm, key)}
    for a, b in experiment.comparisons:
        for key, label, better in experiment.metrics:
            va, vb = arm_values(stored, a, key), arm_values(stored, b, key)
            if not va or len(va) != len(vb):
                continue
            difference = paired_difference(va, vb)
            entry = {"a": a, "b": b, "metric": key, "difference": difference,
                     "verdict": verdict(a, b, difference, metric=label, higher_is_better=better)}
            if key == "accuracy":
                entry["over_images"] = paired_over_images(arm_values(stored, a, "correct"), arm_values(stored, b, "correct"))
            summary.comparisons.append(entry)
    labels = {key: label for key, label, _ in experiment.metrics}
    for arm in summary.arms:
        for key_a, key_b, label in experiment.within_arm:
            va, vb = arm_values(stored, arm, key_a), arm_values(stored, arm, key_b)
            if not va or len(va) != len(vb):
                continue
            difference = paired_difference(va, vb)
            entry = {"a": f"{arm} {label}", "b": f"{arm} without", "metric": key_a, "difference": difference,
                     "verdict": verdict(f"{arm} {label}", f"{arm} without", difference,
                                        metric=labels.get(key_b, key_b))}
            # the per-image record of an accuracy key: "accuracy" -> "correct", "tta_accuracy" -> "tta_correct"
            per_image = {key: key.replace("accuracy", "correct") for key in (key_a, key_b)}
            if all(arm_values(stored, arm, per_image[key]) for key in (key_a, key_b)):
                entry["over_images"] = paired_over_images(arm_values(stored, arm, per_image[key_a]),
                                                          arm_values(stored, arm, per_image[key_b]))
            summary.comparisons.append(entry)
    return summary


def report_markdown(name: str, folder: Path | None = None) -> str:
    """The stored results of `name` as Markdown: a table of mean ± SE per arm, then the verdicts."""
    stored = load(name, folder)
    experiment = _experiment(name)
    summary = summarize(stored)
    shown = [(key, label) for key, label, _ in experiment.metrics
             if any(key in figures for figures in summary.arms.values())]
    seeds = ", ".join(str(s) for s in stored["seeds"])
    data = "; ".join(f"{d['folder']} ({d['n_train']} train + {d['n_val']} val images)" for d in stored["data"])
    lines = [f"**Stored runs: `{name}`** ({experiment.question}; seeds {seeds}; {data}). "
             f"Mean ± standard error over seeds:", "",
             "| arm | " + " | ".join(label for _, label in shown) + " |",
             "|---|" + "---|" * len(shown)]
    for arm, figures in summary.arms.items():
        cells = [figures[key].format() if key in figures else "–" for key, _ in shown]
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    lines.append("")
    for entry in summary.comparisons:
        text = f"- {entry['verdict']}"
        if "over_images" in entry:
            over = entry["over_images"]
            text += (f"; paired over the {over.n} validation images, {entry['a']} − {entry['b']}: "
                     f"{over.mean:+.3f} ± {over.se:.3f}")
        lines.append(text)
    lines += ["", f"*Rule: {VERDICT_RULE}.*"]
    return "\n".join(lines)


def _format_seconds(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 120 else f"{seconds:.0f} s"


def main(argv: list | None = None) -> int:
    """Command line: run, list or summarise the stored experiments."""
    parser = argparse.ArgumentParser(
        prog="python -m workbook.experiments",
        description="Run a named experiment over its seeds and store the results as JSON in workbook/results/, "
                    "or print the stored summary.")
    parser.add_argument("name", nargs="?", help="the experiment (see --list)")
    parser.add_argument("--list", action="store_true", help="list the experiments and whether results are stored")
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds (default: the experiment's declared seeds)")
    parser.add_argument("--summary", action="store_true", help="print the stored results' summary; train nothing")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--out", type=Path, default=None, help="folder for NAME.json (default workbook/results)")
    args = parser.parse_args(argv)
    if args.list:
        for experiment in EXPERIMENTS.values():
            path = result_path(experiment.name, args.out)
            state = "stored" if path.is_file() else "not run"
            if path.is_file() and json.loads(path.read_text()).get("config_hash") != experiment.config_hash():
                state = "stored, OUT OF DATE (configuration changed)"
            print(f"{experiment.name:<24} {experiment.notebook:<26} {state}: {experiment.question}")
        return 0
    if not args.name:
        parser.error("name an experiment, or use --list")
    try:
        _experiment(args.name)
    except ValueError as error:
        parser.error(str(error))
    if args.summary:
        print(report_markdown(args.name, args.out))
        return 0
    stored = run_experiment(args.name, args.seeds, folder=args.out, threads=args.threads,
                            log=lambda line: print(line, flush=True))
    print(f"wrote {result_path(args.name, args.out)} in {_format_seconds(stored['wall_seconds'])}")
    print(report_markdown(args.name, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())

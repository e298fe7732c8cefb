"""Calibrate the embedded synthetic data set and the small model; prints timings and accuracies.

Usage (from the repo root):
    PYTHONPATH=. .venv/bin/python bench/calibrate_data.py            # everything (~4 min on 2 cores)
    PYTHONPATH=. .venv/bin/python bench/calibrate_data.py --skip-train
    PYTHONPATH=. .venv/bin/python bench/calibrate_data.py --sizes 64 --seconds 60

Prints: generation time of the small and large variants (fresh, into a temporary folder), image
counts, channel mean/std, DataLoader and training throughput at each size, and the validation
accuracy after about `--seconds` of training at each size (wall clock; the CPU time of the process is
printed too, since other processes on the machine slow the wall clock down), then the smaller sizes
again for as many epochs as the largest got, with how often the texture pairs (disc/striped disc,
square/dotted square) are confused.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from workbook.data import VARIANTS, get_dls, image_folder_stats, sorted_image_files
from workbook.synthetic import make_synthetic_imagenette
from workbook.models import make_learner


def time_generation(variant: str) -> tuple[float, Path, tempfile.TemporaryDirectory]:
    """Seconds to generate `variant` into a fresh temporary folder (kept alive by the returned handle)."""
    tmp = tempfile.TemporaryDirectory()
    start = time.perf_counter()
    root = make_synthetic_imagenette(tmp.name, variant=variant)
    return time.perf_counter() - start, root, tmp


def data_throughput(root: Path, size: int, bs: int, num_workers: int = 0) -> float:
    """Training images per second produced by the DataLoader alone (one pass)."""
    dls = get_dls(root, size, bs=bs, num_workers=num_workers)
    start = time.perf_counter()
    n = sum(len(xb) for xb, _ in dls.train)
    return n / (time.perf_counter() - start)


def pair_confusion(learn, plain: int, textured: int) -> float:
    """Share of validation images of a texture pair predicted as the other class of the pair."""
    with learn.no_bar():
        preds, targets = learn.get_preds()
    predicted = preds.argmax(1)
    in_pair = (targets == plain) | (targets == textured)
    swapped = in_pair & (predicted != targets) & ((predicted == plain) | (predicted == textured))
    return float(swapped.sum() / in_pair.sum())


def train(root: Path, size: int, bs: int, lr: float, epochs: int) -> dict:
    """fit_one_cycle for `epochs`; wall/CPU time, throughput, accuracy and texture-pair confusion."""
    dls = get_dls(root, size, bs=bs)
    learn = make_learner(dls)
    wall, cpu = time.perf_counter(), time.process_time()
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(epochs, lr)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"epochs": epochs, "wall_s": wall, "cpu_s": cpu, "img_per_s": epochs * len(dls.train_ds) / wall,
            "accuracy": float(learn.recorder.values[-1][2]),
            "pair_confusion": (pair_confusion(learn, 0, 1) + pair_confusion(learn, 3, 4)) / 2}


def epochs_in(root: Path, size: int, bs: int, lr: float, seconds: float) -> int:
    """How many epochs fit in `seconds`, from the time of one (warm-up) epoch."""
    dls = get_dls(root, size, bs=bs)
    probe = make_learner(dls)
    with probe.no_bar(), probe.no_logging():
        start = time.perf_counter()
        probe.fit(1, lr)
    return max(1, round(seconds / (time.perf_counter() - start)))


def report(size: int, r: dict, lr: float, bs: int) -> None:
    print(f"size {size:3d}: {r['epochs']:2d} epochs fit_one_cycle(lr={lr:g}, bs={bs}) in {r['wall_s']:3.0f} s wall / "
          f"{r['cpu_s']:3.0f} s CPU, {r['img_per_s']:4.0f} train img/s (incl. validation), "
          f"valid accuracy {r['accuracy']:.3f}, texture pairs confused {r['pair_confusion']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--seconds", type=float, default=60.0, help="training wall-clock budget per size")
    parser.add_argument("--bs", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--skip-train", action="store_true")
    args = parser.parse_args()
    print(f"torch threads: {torch.get_num_threads()}")

    handles = []
    roots = {}
    for variant in ("small", "large"):
        seconds, root, handle = time_generation(variant)
        handles.append(handle)
        roots[variant] = root
        n_train = len(sorted_image_files(root / "train"))
        n_val = len(sorted_image_files(root / "val"))
        per_class = VARIANTS[variant]
        print(f"generate {variant:5s}: {seconds:5.1f} s  {n_train} train + {n_val} val images "
              f"({per_class[0]}/{per_class[1]} per class)")
    mean, std = image_folder_stats(roots["small"] / "train", max_images=10_000)
    print("channel mean (train, small): " + ", ".join(f"{m:.3f}" for m in mean))
    print("channel std  (train, small): " + ", ".join(f"{s:.3f}" for s in std))

    for size in args.sizes:
        for workers in (0, 2):
            rate = data_throughput(roots["small"], size, args.bs, workers)
            print(f"size {size:3d}: DataLoader alone, num_workers={workers}: {rate:5.0f} img/s")
    if args.skip_train:
        return
    epochs = {}
    for size in args.sizes:
        epochs[size] = epochs_in(roots["small"], size, args.bs, args.lr, args.seconds)
        print(f"-- about {args.seconds:.0f} s of training at {size} px --")
        report(size, train(roots["small"], size, args.bs, args.lr, epochs[size]), args.lr, args.bs)
    largest = max(args.sizes)
    for size in args.sizes:
        if size != largest:
            print(f"-- the same number of epochs as at {largest} px --")
            report(size, train(roots["small"], size, args.bs, args.lr, epochs[largest]), args.lr, args.bs)


if __name__ == "__main__":
    main()

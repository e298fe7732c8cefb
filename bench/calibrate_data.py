"""Calibrate the embedded synthetic data set and the small model; prints timings and accuracies.

Usage (from the repo root):
    PYTHONPATH=. .venv/bin/python bench/calibrate_data.py            # everything (~5 min on 2 cores)
    PYTHONPATH=. .venv/bin/python bench/calibrate_data.py --skip-train
    PYTHONPATH=. .venv/bin/python bench/calibrate_data.py --sizes 64 --seconds 60

Prints: generation time of the small and large variants (fresh, into a temporary folder), image
counts, channel mean/std, DataLoader and training throughput at each size, and the validation
accuracy after about `--seconds` of training (wall clock; the CPU time of the process is printed too,
since other processes on the machine slow the wall clock down).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from workbook.data import VARIANTS, get_dls, image_folder_stats, make_synthetic_imagenette, sorted_image_files
from workbook.models import make_learner


def time_generation(variant: str) -> tuple[float, Path, tempfile.TemporaryDirectory]:
    """Seconds to generate `variant` into a fresh temporary folder (kept alive by the returned handle)."""
    tmp = tempfile.TemporaryDirectory()
    start = time.perf_counter()
    root = make_synthetic_imagenette(tmp.name, variant=variant)
    return time.perf_counter() - start, root, tmp


def data_throughput(root: Path, size: int, bs: int) -> float:
    """Training images per second produced by the DataLoader alone (one pass)."""
    dls = get_dls(root, size, bs=bs)
    start = time.perf_counter()
    n = sum(len(xb) for xb, _ in dls.train)
    return n / (time.perf_counter() - start)


def train_for(root: Path, size: int, bs: int, lr: float, seconds: float) -> dict:
    """Estimate the epochs that fit in `seconds`, train that many with one cycle, report accuracy."""
    dls = get_dls(root, size, bs=bs)
    probe = make_learner(dls)
    with probe.no_bar(), probe.no_logging():
        start = time.perf_counter()
        probe.fit(1, lr)                         # one epoch, also warms up caches
        epoch_s = time.perf_counter() - start
    epochs = max(1, round(seconds / epoch_s))
    learn = make_learner(dls)
    wall, cpu = time.perf_counter(), time.process_time()
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(epochs, lr)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    n_train = len(dls.train_ds)
    accuracy = float(learn.recorder.values[-1][2])
    return {"epochs": epochs, "wall_s": wall, "cpu_s": cpu, "img_per_s": epochs * n_train / wall,
            "accuracy": accuracy}


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
        print(f"size {size:3d}: DataLoader alone {data_throughput(roots['small'], size, args.bs):6.0f} img/s")
    if args.skip_train:
        return
    for size in args.sizes:
        r = train_for(roots["small"], size, args.bs, args.lr, args.seconds)
        print(f"size {size:3d}: {r['epochs']} epochs fit_one_cycle(lr={args.lr:g}, bs={args.bs}) in "
              f"{r['wall_s']:.0f} s wall / {r['cpu_s']:.0f} s CPU, {r['img_per_s']:.0f} train img/s (incl. "
              f"validation), valid accuracy {r['accuracy']:.3f}")


if __name__ == "__main__":
    main()

"""Cost of five-crop test-time augmentation, side by side with plain inference and fastai's learn.tta().

Usage (from the repo root):
    PYTHONPATH=. .venv/bin/python bench/tta.py          # 500 validation images, 5 repeats (about 2 min)
    PYTHONPATH=. .venv/bin/python bench/tta.py --quick  # 100 images, 1 repeat: a smoke test, noisy ratios

Prints, in one run on the same validation images and the same (untrained: timing does not depend on
the weights) small_xresnet at 64 px:

* model only: the images already decoded and batched; plain = one forward pass of the 64 px batches,
  five-crop = the reference `five_crop_tta` on the 72 px batches (five 64 px crops, one forward pass
  each), and, for comparison, the same five crops sent through the model as one batch of 5 N images.
  Goal: five-crop / plain <= 5.5 (five passes and little else).
* end to end, loading included: plain `learn.get_preds`, fastai `learn.tta()` (4 augmented passes +
  1 plain), and five-crop TTA over a DataLoader of the 72 px images; ratios five-crop / plain and
  five-crop / learn.tta().

Each figure is the median of the repeats. The model-only timings alternate batch by batch and the
end-to-end ones pass by pass, so that a change in the machine's load affects all methods alike; on a
shared machine the ratios still move by about 10 % from run to run.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from autograder.reference.tta import five_crop, five_crop_tta
from workbook.data import get_dls, get_imagenette, sorted_image_files
from workbook.models import make_learner

SIZE, CROP_SOURCE, ITEM_SIZE = 64, 72, 128
GOAL = 5.5


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 images and a single repeat")
    parser.add_argument("--repeats", type=int, default=None, help="repeats of every measurement (default 5, quick 1)")
    args = parser.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 5)

    path = get_imagenette()
    files = sorted_image_files(path / "val")
    if args.quick:
        files = files[::5]
    dls = get_dls(path, SIZE, bs=64, item_size=ITEM_SIZE)
    crop_dls = get_dls(path, CROP_SOURCE, bs=64, item_size=ITEM_SIZE)
    plain_dl = dls.test_dl(files, with_labels=True)
    crop_dl = crop_dls.test_dl(files, with_labels=True)
    learn = make_learner(dls, seed=0)
    model = learn.model.eval()
    plain_batches = [xb for xb, _ in plain_dl]
    crop_batches = [xb for xb, _ in crop_dl]

    def model_only() -> tuple[float, float, float]:
        """Seconds of plain, five-crop and one-batch five-crop inference, interleaved batch by batch."""
        plain = five = one_batch = 0.0
        for xb, xb_crop in zip(plain_batches, crop_batches):
            with torch.no_grad():
                plain += seconds(lambda: model(xb))
            five += seconds(lambda: five_crop_tta(model, xb_crop, SIZE))
            with torch.no_grad():
                one_batch += seconds(lambda: model(five_crop(xb_crop, SIZE).flatten(0, 1)).softmax(dim=-1)
                                     .reshape(5, len(xb_crop), -1).mean(dim=0))
        return plain, five, one_batch

    def five_end_to_end():
        for xb, _ in crop_dl:
            five_crop_tta(model, xb, SIZE)

    model_only()  # warm-up: first calls allocate memory and pick kernels
    times = {k: [] for k in ("plain model", "five model", "five one batch", "plain e2e", "fastai e2e", "five e2e")}
    with learn.no_bar(), learn.no_logging():
        for _ in range(repeats):
            for key, value in zip(("plain model", "five model", "five one batch"), model_only()):
                times[key].append(value)
            times["plain e2e"].append(seconds(lambda: learn.get_preds(dl=plain_dl)))
            times["fastai e2e"].append(seconds(lambda: learn.tta(dl=plain_dl)))
            times["five e2e"].append(seconds(five_end_to_end))
    t = {k: statistics.median(v) for k, v in times.items()}

    device = next(model.parameters()).device
    print(f"bench/tta.py: {len(files)} validation images, model input {SIZE} px, crops of {CROP_SOURCE} px images, "
          f"device {device}, torch threads {torch.get_num_threads()}, median of {repeats}")
    ratio = t["five model"] / t["plain model"]
    verdict = "meets" if ratio <= GOAL else "MISSES"
    print(f"model only    plain {t['plain model']:6.2f} s   five-crop TTA {t['five model']:6.2f} s   "
          f"five-crop / plain {ratio:4.2f}x  ({verdict} the goal <= {GOAL}x)")
    print(f"              five crops as one batch of 5 N {t['five one batch']:6.2f} s   "
          f"/ plain {t['five one batch'] / t['plain model']:4.2f}x  (the reference loops over the crops)")
    print(f"end to end    plain {t['plain e2e']:6.2f} s   learn.tta() {t['fastai e2e']:6.2f} s   "
          f"five-crop TTA {t['five e2e']:6.2f} s")
    print(f"              five-crop / plain {t['five e2e'] / t['plain e2e']:4.2f}x   "
          f"five-crop / learn.tta() {t['five e2e'] / t['fastai e2e']:4.2f}x   "
          f"learn.tta() / plain {t['fastai e2e'] / t['plain e2e']:4.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

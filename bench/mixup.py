"""Time per batch of the reference Mixup against fastai's `MixUp.before_batch`, side by side.

Both sides do the work of one training batch before the forward pass: draw one lam per sample, draw a
permutation, mix the images. fastai's callback (2.8) does it in `before_batch` from the global
generator, folds lam and leaves integer labels alone (it mixes the losses later); the reference
draws from a `torch.Generator` (`sample_lam`, `torch.randperm(generator=...)`), checks its arguments
and also returns the mixed one-hot targets. Timings alternate between the two sides and keep the
median of many repeats. Prints one ratio per batch shape; the goal is <= 1.1.

    python bench/mixup.py
"""
import statistics
import time

import torch
from fastai.callback.mixup import MixUp
from fastai.data.core import DataLoaders
from fastai.data.load import DataLoader
from fastai.learner import Learner
from fastai.losses import CrossEntropyLossFlat

from autograder.reference.mixup import mixup, sample_lam

GOAL = 1.1
SHAPES = [(64, 3, 32, 32), (64, 3, 128, 128), (128, 3, 224, 224)]
N_CLASSES = 10


def fastai_callback():
    ds = [(torch.zeros(3, 2, 2), 0)] * 4
    learn = Learner(DataLoaders(DataLoader(ds, bs=2), DataLoader(ds, bs=2)), torch.nn.Linear(12, 2),
                    loss_func=CrossEntropyLossFlat())
    cb = MixUp(0.4)
    learn.add_cb(cb)
    learn.training = True
    cb.before_train()
    return learn, cb


def per_batch_seconds(step, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    torch.manual_seed(0)
    learn, cb = fastai_callback()
    generator = torch.Generator().manual_seed(0)
    print(f"torch threads: {torch.get_num_threads()}")
    print(f"{'batch':<22}{'fastai MixUp':>14}{'reference':>12}{'ratio':>8}")
    worst = 0.0
    for shape in SHAPES:
        x = torch.rand(shape)
        y = torch.randint(0, N_CLASSES, (shape[0],))

        def fastai_step():
            learn.xb, learn.yb = (x,), (y,)
            cb.before_batch()

        def reference_step():
            lam = sample_lam(0.4, shape[0], generator)
            perm = torch.randperm(shape[0], generator=generator)
            mixup(x, y, lam, perm, N_CLASSES)

        repeats = max(5, int(2e8 / x.numel()) // 10)
        for step in (fastai_step, reference_step):     # warm-up
            per_batch_seconds(step, 3)
        fastai_t, ours_t = [], []
        for _ in range(5):                             # alternate, so both see the same machine load
            fastai_t.append(per_batch_seconds(fastai_step, repeats))
            ours_t.append(per_batch_seconds(reference_step, repeats))
        f, o = statistics.median(fastai_t), statistics.median(ours_t)
        worst = max(worst, o / f)
        print(f"{str(list(shape)):<22}{f * 1e3:>11.3f} ms{o * 1e3:>9.3f} ms{o / f:>8.2f}")
    cb.after_train()
    print(f"worst ratio reference / fastai: {worst:.2f} (goal <= {GOAL})")


if __name__ == "__main__":
    main()

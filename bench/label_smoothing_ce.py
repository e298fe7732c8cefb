"""Cost of the reference `label_smoothing_ce` against torch's native cross_entropy(label_smoothing=).

Forward + backward on one batch of logits, for K = 10 (Imagenette) and K = 1000 (ImageNet). The
implementations take turns inside every round (the order alternates), so a moment when the machine
is busy slows them alike; each round times `inner` calls after a warm-up, and the printed ratio is
the median over rounds of (reference time / torch time). fastai's LabelSmoothingCrossEntropy is
timed alongside for comparison. Goal: ratio <= 1.1.

    .venv/bin/python bench/label_smoothing_ce.py            # about 20 s on 2 CPU cores
    .venv/bin/python bench/label_smoothing_ce.py --quick    # a few seconds
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from fastai.losses import LabelSmoothingCrossEntropy

from autograder.reference.label_smoothing import label_smoothing_ce

EPS = 0.1


def implementations():
    fastai_loss = LabelSmoothingCrossEntropy(eps=EPS)
    return {
        "torch": lambda logits, y: F.cross_entropy(logits, y, label_smoothing=EPS),
        "reference": lambda logits, y: label_smoothing_ce(logits, y, EPS),
        "fastai": lambda logits, y: fastai_loss(logits, y),
    }


def fwd_bwd_seconds(fn, logits, y, inner: int) -> float:
    """Seconds per forward + backward call, averaged over `inner` calls."""
    sync = torch.cuda.synchronize if logits.is_cuda else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(inner):
        logits.grad = None
        fn(logits, y).backward()
    sync()
    return (time.perf_counter() - start) / inner


def measure(n: int, k: int, device: str, rounds: int, inner: int, seed: int = 0) -> dict[str, float]:
    """Median seconds per call of each implementation, and the median per-round ratios to torch."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, k, generator=g).mul_(3).to(device).requires_grad_(True)
    y = torch.randint(0, k, (n,), generator=g).to(device)
    fns = implementations()
    for fn in fns.values():                      # warm-up: allocator, dispatch caches, kernels
        fwd_bwd_seconds(fn, logits, y, max(inner // 4, 5))
    times = {name: [] for name in fns}
    order = list(fns)
    for r in range(rounds):
        for name in (order if r % 2 == 0 else order[::-1]):
            times[name].append(fwd_bwd_seconds(fns[name], logits, y, inner))
    ratios = {name: statistics.median(t / b for t, b in zip(times[name], times["torch"])) for name in fns}
    return {"median_s": {name: statistics.median(t) for name, t in times.items()}, "ratio": ratios}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and calls (a few seconds)")
    parser.add_argument("--batch", type=int, default=256, help="samples per batch (default 256)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads (default 1: on a shared 2-core machine, two OpenMP threads on "
                             "these small tensors wait for each other and the times swing by 50x)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rounds, inner = (31, 10) if args.quick else (301, 10)
    print(f"device {args.device}, {torch.get_num_threads()} threads, batch {args.batch}, eps {EPS}, "
          f"{rounds} rounds x {inner} calls, forward + backward")
    print(f"{'K':>6} {'torch us':>9} {'reference us':>13} {'fastai us':>10} {'reference/torch':>16} {'fastai/torch':>13}")
    for k in (10, 1000):
        result = measure(args.batch, k, args.device, rounds, inner)
        t, r = result["median_s"], result["ratio"]
        print(f"{k:>6} {t['torch'] * 1e6:>9.1f} {t['reference'] * 1e6:>13.1f} {t['fastai'] * 1e6:>10.1f} "
              f"{r['reference']:>15.2f}x {r['fastai']:>12.2f}x")


if __name__ == "__main__":
    main()

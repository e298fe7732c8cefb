"""Mean ± standard error over seeds, paired differences, and the verdict the workbook draws from them.

Every comparison of two training recipes in the workbook is summarised the same way:

* each recipe's metric as **mean ± standard error** over its seeds, ``SE = s / sqrt(n)`` with ``s`` the
  sample standard deviation (``n - 1`` in the denominator);
* the difference ``A - B`` **paired by seed** (the two recipes share the seed, hence the initial
  weights and the batch order), with the standard error of the per-seed differences;
* the **verdict rule**: A beats B when the mean difference is at least two standard errors away from 0
  (``|d| >= 2 SE``); otherwise the difference is "within noise". With 3 seeds this is a screen, not a
  95 % test (Student's t with 2 degrees of freedom needs 4.3 SE for that), so "A beats B" here means
  "worth a closer look", and "within noise" means no evidence either way.
* optionally, the same difference **paired over validation images**: each image's correctness averaged
  over the seeds, A minus B, with the standard error over images. It measures how much the finite
  validation set, rather than training, makes the numbers move.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Estimate", "mean_se", "paired_difference", "paired_over_images", "verdict", "VERDICT_RULE"]

VERDICT_RULE = "a difference counts when it is at least 2 standard errors from 0; otherwise it is within noise"


@dataclass(frozen=True)
class Estimate:
    """A mean, its standard error and the number of values it comes from."""
    mean: float
    se: float
    n: int

    def format(self, digits: int = 3) -> str:
        """'0.652 ± 0.012 (n=3)'; the SE is shown as '–' when it is undefined (one value)."""
        se = "–" if math.isnan(self.se) else f"{self.se:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {se} (n={self.n})"


def _numbers(values, name: str) -> list[float]:
    try:
        numbers = [float(v) for v in values]
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be a sequence of numbers: {error}") from None
    if not numbers:
        raise ValueError(f"{name} is empty: need at least one value")
    if any(math.isnan(v) for v in numbers):
        raise ValueError(f"{name} holds NaN; drop or fix the failed runs first")
    return numbers


def mean_se(values) -> Estimate:
    """Mean and standard error (sample std / sqrt(n)) of `values`; SE is NaN for a single value."""
    numbers = _numbers(values, "values")
    n = len(numbers)
    mean = math.fsum(numbers) / n
    if n == 1:
        return Estimate(mean, math.nan, 1)
    variance = math.fsum((v - mean) ** 2 for v in numbers) / (n - 1)
    return Estimate(mean, math.sqrt(variance / n), n)


def paired_difference(a, b) -> Estimate:
    """Mean ± SE of the differences ``a[i] - b[i]`` (values paired by seed)."""
    a, b = _numbers(a, "a"), _numbers(b, "b")
    if len(a) != len(b):
        raise ValueError(f"paired values need the same length, got {len(a)} and {len(b)}")
    return mean_se([x - y for x, y in zip(a, b)])


def paired_over_images(correct_a, correct_b) -> Estimate:
    """Difference of accuracy paired over validation images.

    Args:
        correct_a, correct_b: one sequence per seed, each holding 0/1 per validation image (the same
            images in the same order in every sequence).

    Returns:
        Mean ± SE over images of (image's mean correctness under A) − (under B); n is the image count.
    """
    if len(correct_a) == 0 or len(correct_a) != len(correct_b):
        raise ValueError("need the same, non-zero number of seeds for A and B")
    lengths = {len(c) for c in (*correct_a, *correct_b)}
    if len(lengths) != 1:
        raise ValueError(f"every seed must cover the same validation images, got lengths {sorted(lengths)}")
    n_images = lengths.pop()
    per_image = [math.fsum(float(c[i]) for c in correct_a) / len(correct_a)
                 - math.fsum(float(c[i]) for c in correct_b) / len(correct_b) for i in range(n_images)]
    return mean_se(per_image)


def verdict(name_a: str, name_b: str, difference: Estimate, *, metric: str = "accuracy",
            higher_is_better: bool | None = True, digits: int = 3) -> str:
    """The sentence the rule gives for ``difference = A - B`` on `metric`.

    Args:
        name_a, name_b: the two recipes.
        difference: A − B, paired by seed (:func:`paired_difference`).
        metric: what was measured, for the sentence.
        higher_is_better: True (accuracy): "A beats B"; False (an error such as ECE): the lower one
            beats the other; None: no value judgement, "A's metric is higher than B's".
        digits: decimals shown.
    """
    if difference.n < 2 or math.isnan(difference.se):
        return f"{metric}, {name_a} vs {name_b}: one seed only, no verdict"
    if difference.mean == 0 and difference.se == 0:
        return f"{metric}, {name_a} vs {name_b}: no difference (equal in every seed, n={difference.n})"
    if abs(difference.mean) < 2 * difference.se or difference.mean == 0:
        return (f"{metric}, {name_a} vs {name_b}: within noise (difference {difference.mean:+.{digits}f} ± "
                f"{difference.se:.{digits}f}, n={difference.n})")
    size = f"{abs(difference.mean):.{digits}f} ± {difference.se:.{digits}f} (n={difference.n})"
    higher, lower = (name_a, name_b) if difference.mean > 0 else (name_b, name_a)
    if higher_is_better is None:
        return f"{metric}: {higher} is higher than {lower} by {size}"
    winner, loser = (higher, lower) if higher_is_better else (lower, higher)
    return f"{metric}: {winner} beats {loser} by {size}"

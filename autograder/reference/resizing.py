"""Reference solutions of the progressive resizing exercises.

Progressive resizing (fastai course and book, chapter "Training a State-of-the-Art Model"; the same
idea drives the "FixRes" observation of Touvron et al., 2019, that train and test resolutions interact)
trains on small images first and larger ones at the end. The *image size* grows from stage to stage;
the batch size does not (if anything it must shrink, since memory grows with the number of pixels).

`size_schedule` gives the image size of each epoch. Epoch i of n (0-based) gets the linear interpolation

    s_i = start + (final - start) * i / (n - 1)

rounded to the nearest multiple of `step` (a tie goes up, towards `final`); a single epoch is trained
at `final`. Rounding is monotone and `start`, `final` are multiples of `step`, so the schedule never
decreases, starts at `start` and ends at `final`.

`progressive_fit` runs a schedule with a fastai Learner: one stage per run of equal sizes, each stage
replaces `learn.dls` by DataLoaders at that size (same batch size) and trains with one-cycle.
"""
from numbers import Integral, Real

__all__ = ["size_schedule", "schedule_stages", "progressive_fit"]


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def size_schedule(start: int, final: int, n_epochs: int, step: int = 16) -> list[int]:
    """The image size of each epoch of a progressive resizing run.

    Args:
        start: size of the first epoch, a multiple of `step`.
        final: size of the last epoch, a multiple of `step`, at least `start`.
        n_epochs: number of epochs (>= 1); one epoch is trained at `final`.
        step: every size is a multiple of it (e.g. 16 or 32, what a network's downsampling prefers).

    Returns:
        A list of `n_epochs` ints, non-decreasing, from `start` to `final`.

    Example:
        >>> size_schedule(32, 64, 6, 16)
        [32, 32, 48, 48, 64, 64]
    """
    start, final = _positive_int("start", start), _positive_int("final", final)
    n_epochs, step = _positive_int("n_epochs", n_epochs), _positive_int("step", step)
    if start > final:
        raise ValueError(f"start ({start}) is larger than final ({final}): progressive resizing grows the images, "
                         "so pass the small size as start")
    for name, size in (("start", start), ("final", final)):
        if size % step:
            raise ValueError(f"{name}={size} is not a multiple of step={step}; round it to a multiple of {step}")
    if n_epochs == 1:
        return [final]
    # Exact integer arithmetic: s_i / step = num / den, rounded half up = floor((2 num + den) / (2 den)).
    den = step * (n_epochs - 1)
    return [step * ((2 * (start * (n_epochs - 1) + (final - start) * i) + den) // (2 * den)) for i in range(n_epochs)]


def schedule_stages(sizes) -> list[tuple[int, int]]:
    """Group a per-epoch schedule into stages: [(size, number of epochs), ...] in order.

    Args:
        sizes: a non-empty sequence of positive ints, one per epoch.

    Example:
        >>> schedule_stages([32, 32, 48, 64, 64])
        [(32, 2), (48, 1), (64, 2)]
    """
    sizes = list(sizes)
    if not sizes:
        raise ValueError("the schedule is empty: give at least one epoch")
    stages: list[tuple[int, int]] = []
    for size in sizes:
        size = _positive_int("every size", size)
        if stages and stages[-1][0] == size:
            stages[-1] = (size, stages[-1][1] + 1)
        else:
            stages.append((size, 1))
    return stages


def progressive_fit(learn, sizes, make_dls, lr: float) -> list[tuple[int, int]]:
    """Train `learn` stage by stage on growing images.

    For each stage (a run of equal sizes in `sizes`), in order: `learn.dls = make_dls(size, bs)` with
    the batch size of the DataLoaders the learner has now, then `learn.fit_one_cycle(n_epochs, lr)`.

    Args:
        learn: a fastai Learner (anything with `dls.bs`, a settable `dls` and `fit_one_cycle`).
        sizes: the size of each epoch, e.g. from `size_schedule`.
        make_dls: a function (size, bs) -> DataLoaders of images of that size.
        lr: the maximum learning rate of each one-cycle stage (> 0).

    Returns:
        The stages trained, [(size, epochs), ...].
    """
    if not callable(make_dls):
        raise TypeError(f"make_dls must be a function (size, bs) -> DataLoaders, got {type(make_dls).__name__}")
    if isinstance(lr, bool) or not isinstance(lr, Real) or not lr > 0:
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    stages = schedule_stages(sizes)
    bs = learn.dls.bs
    for size, n_epochs in stages:
        learn.dls = make_dls(size, bs)
        learn.fit_one_cycle(n_epochs, lr)
    return stages

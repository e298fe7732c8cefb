"""Wrong progressive resizing code that students really write. `breaks`: the checks each must fail.

The seed student (shared/seed/student_answers.md, "Implement progressive resizing... Did it help?")
answered by training with a batch size of 64 and then of 128: the batch size grew, the images did
not. `fit_grows_batch_size` is that mistake as code, and `SEED_WHAT_GROWS` the matching answer to the
notebook's multiple-choice question ("a": the batch size).

The `progressive_fit` mutants are the student's function as written; `MUTANTS` wraps each in
`run_learner_probe`, as the hidden test cells do (see autograder/rubric/resizing.py). `RAW` keeps
them unwrapped, for whole submissions.
"""
import functools
import math

from autograder.rubric.resizing import PROBE_TARGET
from autograder.golden.mutants import Mutant
from workbook.probes import run_learner_probe

SEED_WHAT_GROWS = "a"
VALUES, ERRORS = "size_schedule_values", "size_schedule_errors"
STAGES, BATCH = "progressive_fit_stages", "progressive_fit_batch_size"


def _validated(start, final, n_epochs, step):
    if n_epochs < 1 or step < 1 or start < 1 or start > final or start % step or final % step:
        raise ValueError("bad schedule arguments")


def schedule_decreasing(start, final, n_epochs, step=16):
    # from the final size down to the start: the interpolation written from the wrong end
    _validated(start, final, n_epochs, step)
    if n_epochs == 1:
        return [final]
    return [step * math.floor((final - (final - start) * i / (n_epochs - 1)) / step + 0.5) for i in range(n_epochs)]


def schedule_ignores_step(start, final, n_epochs, step=16):
    # rounds to whole pixels, not to multiples of step
    _validated(start, final, n_epochs, step)
    if n_epochs == 1:
        return [final]
    return [round(start + (final - start) * i / (n_epochs - 1)) for i in range(n_epochs)]


def schedule_never_final(start, final, n_epochs, step=16):
    # i / n_epochs instead of i / (n_epochs - 1): the last epoch stops one step short of final
    _validated(start, final, n_epochs, step)
    return [step * math.floor((start + (final - start) * i / n_epochs) / step + 0.5) for i in range(n_epochs)]


def schedule_floor(start, final, n_epochs, step=16):
    # rounds down instead of to the nearest multiple: stays small longer than asked
    _validated(start, final, n_epochs, step)
    if n_epochs == 1:
        return [final]
    return [step * math.floor((start + (final - start) * i / (n_epochs - 1)) / step) for i in range(n_epochs)]


def schedule_unchecked(start, final, n_epochs, step=16):
    # right for good arguments, but accepts sizes off the step and a shrinking schedule
    if n_epochs < 1 or step < 1:
        raise ValueError("bad schedule arguments")
    if n_epochs == 1:
        return [final]
    return [step * math.floor((start + (final - start) * i / (n_epochs - 1)) / step + 0.5) for i in range(n_epochs)]


def _stages(sizes):
    stages = []
    for size in sizes:
        if stages and stages[-1][0] == size:
            stages[-1] = (size, stages[-1][1] + 1)
        else:
            stages.append((size, 1))
    return stages


def fit_grows_batch_size(learn, sizes, make_dls, lr):
    # the seed's mistake: the batch size grows with the schedule, the images stay at the first size
    stages, bs = _stages(sizes), learn.dls.bs
    for size, n in stages:
        learn.dls = make_dls(stages[0][0], bs * size // stages[0][0])
        learn.fit_one_cycle(n, lr)
    return stages


def fit_every_epoch(learn, sizes, make_dls, lr):
    # one one-cycle run per epoch: the learning rate warms up again every epoch
    bs = learn.dls.bs
    for size in sizes:
        learn.dls = make_dls(size, bs)
        learn.fit_one_cycle(1, lr)
    return _stages(sizes)


def fit_plain_fit(learn, sizes, make_dls, lr):
    # learn.fit: a constant learning rate instead of one-cycle
    stages, bs = _stages(sizes), learn.dls.bs
    for size, n in stages:
        learn.dls = make_dls(size, bs)
        learn.fit(n, lr)
    return stages


def fit_before_resize(learn, sizes, make_dls, lr):
    # trains, then changes the DataLoaders: each stage runs at the previous stage's size
    stages, bs = _stages(sizes), learn.dls.bs
    for size, n in stages:
        learn.fit_one_cycle(n, lr)
        learn.dls = make_dls(size, bs)
    return stages


def fit_shrinks_batch_size(learn, sizes, make_dls, lr):
    # keeps memory constant by shrinking the batch as images grow: sensible, but not what is asked
    stages, bs = _stages(sizes), learn.dls.bs
    for size, n in stages:
        learn.dls = make_dls(size, max(1, bs * stages[0][0] ** 2 // size ** 2))
        learn.fit_one_cycle(n, lr)
    return stages


RAW = {fn.__name__: fn for fn in (fit_grows_batch_size, fit_every_epoch, fit_plain_fit, fit_before_resize,
                                   fit_shrinks_batch_size)}


def _probed(fn):
    return functools.partial(lambda f, sizes, lr, bs: run_learner_probe(f, sizes, lr, bs), fn)


MUTANTS = [
    Mutant("a schedule that decreases", "size_schedule", schedule_decreasing, frozenset({VALUES})),
    Mutant("a schedule that ignores the step", "size_schedule", schedule_ignores_step, frozenset({VALUES})),
    Mutant("a schedule that never reaches the final size", "size_schedule", schedule_never_final, frozenset({VALUES})),
    Mutant("a schedule rounded down", "size_schedule", schedule_floor, frozenset({VALUES})),
    Mutant("a schedule without argument checks", "size_schedule", schedule_unchecked, frozenset({ERRORS})),
    Mutant("the batch size grows instead of the image size (the seed's Q5)", PROBE_TARGET,
           _probed(fit_grows_batch_size), frozenset({STAGES, BATCH})),
    Mutant("one one-cycle run per epoch", PROBE_TARGET, _probed(fit_every_epoch), frozenset({STAGES})),
    Mutant("learn.fit instead of fit_one_cycle", PROBE_TARGET, _probed(fit_plain_fit), frozenset({STAGES})),
    Mutant("trains before changing the DataLoaders", PROBE_TARGET, _probed(fit_before_resize), frozenset({STAGES})),
    Mutant("the batch size shrinks as images grow", PROBE_TARGET, _probed(fit_shrinks_batch_size),
           frozenset({BATCH})),
]

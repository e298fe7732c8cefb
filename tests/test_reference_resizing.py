"""The progressive resizing reference against an independent float formula, its stated properties,
a real fastai Learner, and the probe learner the hidden tests use."""
import itertools

import pytest
import torch
import fastai.callback.schedule  # noqa: F401  (adds Learner.fit_one_cycle)
from fastai.callback.core import Callback
from fastai.data.core import DataLoaders
from fastai.learner import Learner
from torch import nn
from torch.utils.data import TensorDataset

from autograder.rubric import REGISTRY, seed_for
from autograder.rubric.resizing import PROBE_TARGET
from autograder.judge import record_in_process
from autograder.reference.resizing import progressive_fit, schedule_stages, size_schedule
from workbook.probes import ProbeDataLoaders, ProbeLearner, run_learner_probe

ARGUMENTS = [(start, final, n, step) for step in (1, 8, 16, 32) for start in (step, 2 * step, 4 * step)
             for final in (start, start + step, start + 3 * step, start + 7 * step) for n in range(1, 13)]


def float_schedule(start, final, n, step):
    """The rule as a student would write it with floats: linspace, then round half up to the step."""
    if n == 1:
        return [final]
    exact = torch.linspace(start, final, n, dtype=torch.float64)
    return [int(step * torch.floor(v / step + 0.5)) for v in exact]


@pytest.mark.parametrize("start, final, n, step", ARGUMENTS[::7])
def test_schedule_equals_the_float_formula(start, final, n, step):
    assert size_schedule(start, final, n, step) == float_schedule(start, final, n, step)


def test_schedule_properties_hold_everywhere():
    for start, final, n, step in ARGUMENTS:
        sizes = size_schedule(start, final, n, step)
        assert len(sizes) == n and sizes[-1] == final and all(s % step == 0 for s in sizes)
        assert all(a <= b for a, b in zip(sizes, sizes[1:]))
        assert n == 1 or sizes[0] == start
        exact = [start + (final - start) * i / max(n - 1, 1) for i in range(n)]
        assert all(abs(s - e) <= step / 2 for s, e in zip(sizes, exact)) or n == 1


def test_schedule_examples():
    assert size_schedule(32, 64, 6, 16) == [32, 32, 48, 48, 64, 64]
    assert size_schedule(32, 64, 5, 16) == [32, 48, 48, 64, 64]    # 40 is a tie: it goes up to 48
    assert size_schedule(128, 224, 2, 32) == [128, 224]
    assert size_schedule(32, 128, 1, 32) == [128]


@pytest.mark.parametrize("args, error", [((64, 32, 3, 16), ValueError), ((32, 64, 0, 16), ValueError),
                                         ((40, 64, 3, 16), ValueError), ((32, 64, 3, 0), ValueError),
                                         ((32.0, 64, 3, 16), TypeError), ((32, 64, True, 16), TypeError)])
def test_schedule_rejects_bad_arguments(args, error):
    with pytest.raises(error):
        size_schedule(*args)


def test_stages_equal_groupby():
    for sizes in ([32], [32, 32, 48, 64, 64], [16, 16, 16], [8, 16, 8]):
        assert schedule_stages(sizes) == [(k, len(list(g))) for k, g in itertools.groupby(sizes)]
    with pytest.raises(ValueError):
        schedule_stages([])


class SeenSizes(Callback):
    """Logs the image size of every training batch and counts epochs."""

    def before_fit(self):
        self.learn.seen = getattr(self.learn, "seen", [])

    def before_batch(self):
        if self.training:
            self.learn.seen.append((self.epoch, self.xb[0].shape[-1], self.xb[0].shape[0]))


def random_dls(size: int, bs: int) -> DataLoaders:
    g = torch.Generator().manual_seed(size)
    x, y = torch.rand(24, 3, size, size, generator=g), torch.randint(0, 3, (24,), generator=g)
    return DataLoaders.from_dsets(TensorDataset(x, y), TensorDataset(x[:8], y[:8]), bs=bs, device="cpu")


def test_progressive_fit_trains_a_real_learner_stage_by_stage():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    learn = Learner(random_dls(8, 6), model, loss_func=nn.CrossEntropyLoss(), cbs=SeenSizes())
    with learn.no_logging():
        stages = progressive_fit(learn, [8, 8, 16], random_dls, lr=1e-3)
    assert stages == [(8, 2), (16, 1)]
    sizes_per_fit = [size for _, size, _ in learn.seen]
    assert sizes_per_fit == [8] * 8 + [16] * 4                  # 24 images / bs 6: 4 batches an epoch
    assert {bs for *_, bs in learn.seen} == {6}
    assert learn.dls.train.bs == 6 and learn.dls.one_batch()[0].shape[-1] == 16


def test_probe_learner_logs_what_fastai_would_do():
    report = run_learner_probe(progressive_fit, [32, 32, 64], 1e-2, 64)
    assert report["output"] == [(32, 2), (64, 1)]
    assert report["calls"] == [["make_dls", 32, 64], ["dls", 32, 64], ["fit_one_cycle", 2, 0.01],
                               ["make_dls", 64, 64], ["dls", 64, 64], ["fit_one_cycle", 1, 0.01]]
    learn = ProbeLearner(ProbeDataLoaders(8, 4))
    learn.fit(3, lr=0.5)
    learn.fine_tune(1)
    assert learn.calls == [["fit", 3, 0.5], ["fine_tune", 1, 0.002]]


@pytest.mark.parametrize("check", [c for c in REGISTRY.values() if c.target == PROBE_TARGET], ids=lambda c: c.grade_id)
@pytest.mark.parametrize("student", ["ada", "grace"])
def test_reference_passes_the_probe_checks(check, student):
    fn = lambda sizes, lr, bs: run_learner_probe(progressive_fit, sizes, lr, bs)  # noqa: E731
    verdict = record_in_process(check, fn, seed_for("tests", student, check.grade_id))
    assert verdict.passed, verdict.message


def test_seed_answer_to_what_grows_fails():
    assert not record_in_process(REGISTRY["what_grows"], "a", 0).passed
    assert record_in_process(REGISTRY["what_grows"], "(b)", 0).passed

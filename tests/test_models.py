"""Tests of workbook.models: the small XResNet, the Learner factory and the training budget."""
from __future__ import annotations

import math

import pytest
import torch
from fastai.callback.core import Callback
from fastai.callback.training import ShortEpochCallback
from fastai.learner import Learner
from fastai.vision.models.xresnet import xresnet18

from workbook.cache import cache_dir
from workbook.data import get_dls
from workbook.synthetic import make_synthetic_imagenette
from workbook.models import (FAST_TRAIN_FRACTION, ShortValidation, fast_mode, make_learner, small_xresnet,
                             training_budget)


@pytest.fixture(scope="module")
def tiny_dls(tmp_path_factory):
    root = make_synthetic_imagenette(tmp_path_factory.mktemp("synthetic"), variant="tiny")
    return get_dls(root, 32, bs=16)


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------------------------
# small_xresnet
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [24, 32, 64])
def test_small_xresnet_output_shape(size):
    model = small_xresnet(n_out=7).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, size, size))
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()


def test_small_xresnet_is_much_smaller_than_xresnet18():
    small = n_params(small_xresnet())
    assert small < n_params(xresnet18(n_out=10)) / 5
    assert small_xresnet(widen=1.0, blocks_per_stage=2).__class__.__name__ == "XResNet"
    assert n_params(small_xresnet(widen=1.0, blocks_per_stage=2)) > small


@pytest.mark.parametrize("kwargs, error", [
    ({"n_out": 0}, ValueError),
    ({"n_out": 2.0}, TypeError),
    ({"n_out": True}, TypeError),
    ({"widen": 0}, ValueError),
    ({"blocks_per_stage": 0}, ValueError),
    ({"dropout": 1.0}, ValueError),
])
def test_small_xresnet_rejects_bad_arguments(kwargs, error):
    with pytest.raises(error):
        small_xresnet(**kwargs)


# --------------------------------------------------------------------------------------------
# make_learner
# --------------------------------------------------------------------------------------------
def test_make_learner_defaults(tiny_dls, monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBOOK_CACHE", str(tmp_path))
    learn = make_learner(tiny_dls)
    assert isinstance(learn, Learner)
    assert learn.path == cache_dir() == tmp_path.resolve()
    assert [m.name for m in learn.metrics] == ["accuracy"]
    xb, _ = tiny_dls.one_batch()
    model = learn.model.eval()
    with torch.no_grad():
        assert model(xb.to(next(model.parameters()).device)).shape == (16, tiny_dls.c)


def test_make_learner_uses_given_model_and_loss(tiny_dls):
    model = small_xresnet(n_out=10, widen=0.25)
    loss = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    learn = make_learner(tiny_dls, model=model, loss_func=loss)
    assert learn.model is model and learn.loss_func is loss
    with pytest.raises(TypeError):
        make_learner(tiny_dls, model="xresnet")
    with pytest.raises(TypeError):
        make_learner(tiny_dls, seed="0")
    with pytest.raises(TypeError):
        make_learner([1, 2, 3])


def test_make_learner_seed_fixes_the_initial_weights(tiny_dls):
    def weights(seed):
        return torch.cat([p.detach().flatten() for p in make_learner(tiny_dls, seed=seed).model.parameters()])

    assert torch.equal(weights(3), weights(3))
    assert not torch.equal(weights(3), weights(4))


def _train_losses(dls, seed, epochs=1):
    learn = make_learner(dls, seed=seed)
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(epochs, 1e-2)
    return [float(v[0]) for v in learn.recorder.values], learn


@pytest.mark.slow
def test_training_is_reproducible_and_learns(tiny_dls):
    losses_a, _ = _train_losses(tiny_dls, seed=0, epochs=4)
    losses_b, learn = _train_losses(tiny_dls, seed=0, epochs=4)
    assert all(math.isfinite(x) for x in losses_a)
    assert losses_a == pytest.approx(losses_b, rel=1e-4)
    assert losses_a[-1] < losses_a[0]                       # the training loss goes down
    assert 0.0 <= float(learn.recorder.values[-1][2]) <= 1.0


# --------------------------------------------------------------------------------------------
# training_budget
# --------------------------------------------------------------------------------------------
def test_training_budget_full(monkeypatch):
    monkeypatch.delenv("WORKBOOK_FAST", raising=False)
    assert not fast_mode()
    budget = training_budget(5)
    assert (budget.epochs, budget.cbs, budget.fast) == (5, [], False)


@pytest.mark.parametrize("value, fast", [("1", True), ("true", True), ("YES", True), ("0", False), ("", False)])
def test_training_budget_follows_workbook_fast(monkeypatch, value, fast):
    monkeypatch.setenv("WORKBOOK_FAST", value)
    budget = training_budget(5)
    assert budget.fast is fast
    assert budget.epochs == (1 if fast else 5)
    if fast:
        short_epoch, short_validation = budget.cbs
        assert isinstance(short_epoch, ShortEpochCallback) and isinstance(short_validation, ShortValidation)
        assert short_epoch.pct == short_validation.pct == FAST_TRAIN_FRACTION and short_epoch.short_valid is False


def test_training_budget_explicit_fast_overrides_env(monkeypatch):
    monkeypatch.setenv("WORKBOOK_FAST", "1")
    assert training_budget(3, fast=False).epochs == 3
    monkeypatch.delenv("WORKBOOK_FAST")
    assert training_budget(3, fast=True).epochs == 1


@pytest.mark.parametrize("epochs, error", [(0, ValueError), (-2, ValueError), (2.5, TypeError), (True, TypeError)])
def test_training_budget_rejects_bad_epochs(epochs, error):
    with pytest.raises(error):
        training_budget(epochs)
    with pytest.raises(TypeError):
        training_budget(2, fast="yes")


class _CountBatches(Callback):
    """Counts training batches and validation items seen during fit, validate and get_preds."""
    order = ShortEpochCallback.order + 1   # count after ShortEpochCallback's after_batch check

    def before_fit(self):
        self.train_batches, self.valid_items = 0, 0

    def after_batch(self):
        if self.training:
            self.train_batches += 1
        else:
            self.valid_items += self.yb[0].shape[0]


@pytest.mark.slow
def test_fast_budget_trains_and_validates_a_fraction_then_validate_sees_everything(tiny_dls):
    budget = training_budget(10, fast=True)
    counter = _CountBatches()
    learn = make_learner(tiny_dls)
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(budget.epochs, 1e-2, cbs=[*budget.cbs, counter])
        n_train, n_valid, bs = len(tiny_dls.train), len(tiny_dls.valid_ds), tiny_dls.valid.bs
        assert 1 <= counter.train_batches <= math.ceil(FAST_TRAIN_FRACTION * n_train) + 1 < n_train
        assert counter.valid_items == min(n_valid, max(bs, math.ceil(FAST_TRAIN_FRACTION * n_valid))) < n_valid
        assert len(learn.recorder.values) == 1 and len(learn.recorder.values[0]) == 2   # valid loss, accuracy
        learn.add_cb(counter)
        learn.validate()                                    # outside fit: the whole validation set
        assert counter.valid_items == n_valid
        preds, targets = learn.get_preds()
        assert len(preds) == len(targets) == n_valid


@pytest.mark.parametrize("pct", [0, -0.5, 1.5, True, "0.2"])
def test_short_validation_rejects_a_share_outside_0_1(pct):
    with pytest.raises(ValueError, match="pct must be a number in"):
        ShortValidation(pct)


@pytest.mark.slow
def test_short_validation_follows_new_dataloaders(tiny_dls, tmp_path):
    """After `learn.dls` changes (progressive resizing), fit validates on the new DataLoader's images."""
    class ValidSizes(Callback):
        def before_fit(self):
            self.sizes = set()

        def after_batch(self):
            if not self.training:
                self.sizes.add(tuple(self.xb[0].shape[-2:]))

    sizes = ValidSizes()
    learn = make_learner(tiny_dls, cbs=[*training_budget(1, fast=True).cbs, sizes])
    with learn.no_bar(), learn.no_logging():
        learn.fit(1, 1e-3)
        assert sizes.sizes == {(32, 32)}
        learn.dls = get_dls(make_synthetic_imagenette(tmp_path, variant="tiny"), 48, bs=16)
        learn.fit(1, 1e-3)
        assert sizes.sizes == {(48, 48)}


@pytest.mark.slow
def test_short_validation_takes_every_class(tmp_path):
    """The fast budget's validation images come from all ten classes in equal shares, not the first two."""
    from collections import Counter

    dls = get_dls(make_synthetic_imagenette(tmp_path, variant="tiny"), 32, bs=4)   # 40 val images, 4 per class

    class ValidLabels(Callback):
        def before_fit(self):
            self.labels = Counter()

        def after_batch(self):
            if not self.training:
                self.labels.update(self.yb[0].tolist())

    labels = ValidLabels()
    learn = make_learner(dls, cbs=[ShortValidation(0.5), labels])
    with learn.no_bar(), learn.no_logging():
        learn.fit(1, 1e-3)
    assert labels.labels == Counter({c: 2 for c in range(10)})
    # what the first 20 items, a plain `dl.new(n=20)`, would have validated on: five classes only
    assert {int(y) for _, yb in dls.valid.new(n=20) for y in yb} == {0, 1, 2, 3, 4}


def test_spread_subset_checks_its_arguments(tiny_dls):
    from workbook.models import spread_subset
    assert len(spread_subset(tiny_dls.valid, 40).dataset) == 40
    for n in (0, 41, 2.5):
        with pytest.raises(ValueError, match="n must be an int in 1..40"):
            spread_subset(tiny_dls.valid, n)
    from fastai.data.core import DataLoader
    with pytest.raises(TypeError, match="fastai Datasets"):
        spread_subset(DataLoader(list(range(8)), bs=2), 2)

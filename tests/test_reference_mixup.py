"""The Mixup/CutMix reference against fastai 2.8's `MixUp` and `CutMix` callbacks and scipy's Beta.

fastai's callbacks draw lam and the permutation from the global torch generator inside `before_batch`.
To give both sides the same randomness, each test re-seeds the global generator, replays fastai's
draws in the same order (Beta sample, then `randperm`), and re-seeds again before the callback runs.
"""
import math

import pytest
import scipy.stats
import torch
import torch.nn.functional as F
from fastai.callback.mixup import CutMix, MixUp
from fastai.data.core import DataLoaders
from fastai.data.load import DataLoader
from fastai.learner import Learner
from fastai.losses import CrossEntropyLossFlat
from torch.distributions import Beta
from torch.testing import assert_close

from autograder.rubric import REGISTRY, seed_for
from autograder.rubric.mixup import SEEDED_TARGETS
from autograder.judge import record_in_process
from autograder.reference.mixup import cutmix, mixup, mixup_loss, rand_box, sample_lam
from autograder.golden.mutants.mixup import SEED_Q8_ANSWER
from workbook.seeded import seeded


def tiny_learner(loss_func):
    """A Learner whose callbacks can run `before_batch` on batches we set by hand."""
    ds = [(torch.zeros(3, 2, 2), 0)] * 4
    dls = DataLoaders(DataLoader(ds, bs=2), DataLoader(ds, bs=2))
    learn = Learner(dls, torch.nn.Linear(12, 5), loss_func=loss_func)
    learn.training = True
    return learn


def soft_ce(logits, targets):
    return -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def batch(n=8, k=5, shape=(3, 6, 7), seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, *shape, generator=g, dtype=torch.float64).to(dtype), torch.randint(0, k, (n,), generator=g),
            torch.randn(n, k, generator=g, dtype=torch.float64).to(dtype))


def run_fastai_mixup(x, y, alpha, seed, loss_func):
    """fastai's MixUp.before_batch on (x, y) after seeding; the lam and permutation it drew, replayed."""
    torch.manual_seed(seed)
    lam = Beta(torch.tensor(alpha), torch.tensor(alpha)).sample((len(y),)).squeeze()
    folded = torch.maximum(lam, 1 - lam)
    perm = torch.randperm(len(y))
    learn = tiny_learner(loss_func)
    cb = MixUp(alpha)
    learn.add_cb(cb)
    learn.xb, learn.yb = (x.clone(),), (y.clone(),)
    cb.before_train()
    torch.manual_seed(seed)
    cb.before_batch()
    assert_close(cb.lam, folded)                # the replay drew what fastai drew
    return learn, cb, folded, perm


@pytest.mark.parametrize("alpha", [0.4, 1.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mixup_equals_fastai_mixup_with_integer_targets(alpha, seed):
    x, y, logits = batch(seed=seed)
    learn, cb, lam, perm = run_fastai_mixup(x, y, alpha, seed, CrossEntropyLossFlat())
    assert torch.equal(cb.yb1[0], y[perm])
    x_mixed, y_mixed = mixup(x, y, lam, perm, n_classes=5)
    # Same images (both are torch.lerp(x[perm], x, lam)); fastai leaves integer targets unmixed ...
    assert_close(x_mixed, learn.xb[0], rtol=0, atol=0)
    assert torch.equal(learn.yb[0], y)
    # ... and mixes the losses instead, which equals cross-entropy against our mixed one-hot targets.
    fastai_loss = learn.loss_func(logits, *learn.yb)
    assert_close(soft_ce(logits, y_mixed), fastai_loss.as_subclass(torch.Tensor))
    assert_close(mixup_loss(logits, y, lam, perm), fastai_loss.as_subclass(torch.Tensor))
    cb.after_train()


def test_mixup_equals_fastai_mixup_with_float_targets():
    """Without a loss that declares integer targets (`y_int`), fastai mixes the targets themselves."""
    x, y, _ = batch(seed=4)
    one_hot = F.one_hot(y, 5).float()
    learn, cb, lam, perm = run_fastai_mixup(x, one_hot, 0.4, 4, loss_func=soft_ce)
    x_mixed, y_mixed = mixup(x, one_hot, lam, perm)
    assert_close(x_mixed, learn.xb[0], rtol=0, atol=0)
    assert_close(y_mixed, learn.yb[0])
    assert_close(mixup(x, y, lam, perm, n_classes=5)[1], y_mixed)


def test_mixup_is_equation_1_sample_by_sample():
    x, y, _ = batch(n=5, dtype=torch.float64, seed=5)
    lam = torch.tensor([0.0, 0.3, 0.5, 0.9, 1.0], dtype=torch.float64)
    perm = torch.tensor([3, 0, 4, 1, 2])
    x_mixed, y_mixed = mixup(x, y, lam, perm, 5)
    one_hot = F.one_hot(y, 5).double()
    for i in range(5):
        j = int(perm[i])
        assert_close(x_mixed[i], lam[i] * x[i] + (1 - lam[i]) * x[j])
        assert_close(y_mixed[i], lam[i] * one_hot[i] + (1 - lam[i]) * one_hot[j])
    assert_close(y_mixed.sum(1), torch.ones(5, dtype=torch.float64))


def test_mixup_loss_reductions_and_gradient():
    x, y, logits = batch(n=6, dtype=torch.float64, seed=6)
    lam, perm = torch.rand(6, dtype=torch.float64), torch.randperm(6)
    targets = mixup(x, y, lam, perm, 5)[1]
    explicit = -(targets * F.log_softmax(logits, 1)).sum(1)
    assert_close(mixup_loss(logits, y, lam, perm, reduction="none"), explicit)
    assert_close(mixup_loss(logits, y, lam, perm, reduction="sum"), explicit.sum())
    assert_close(mixup_loss(logits, y, lam, perm), F.cross_entropy(logits, targets))
    z = logits.clone().requires_grad_(True)
    mixup_loss(z, y, lam, perm, reduction="sum").backward()
    assert_close(z.grad, logits.softmax(1) - targets)


def run_fastai_cutmix(x, y, seed, box):
    """fastai's CutMix.before_batch with its box replaced by ours (a subclass, fastai's code otherwise)."""
    top, left, bottom, right = box

    class FixedBoxCutMix(CutMix):
        def rand_bbox(self, W, H, lam):
            return tuple(torch.tensor([v]) for v in (left, top, right, bottom))   # fastai: x1, y1, x2, y2

    torch.manual_seed(seed)
    Beta(torch.tensor(1.0), torch.tensor(1.0)).sample((1,))
    perm = torch.randperm(len(y))
    learn = tiny_learner(CrossEntropyLossFlat())
    cb = FixedBoxCutMix(1.0)
    learn.add_cb(cb)
    learn.xb, learn.yb = (x.clone(),), (y.clone(),)
    cb.before_train()
    torch.manual_seed(seed)
    cb.before_batch()
    assert torch.equal(cb.yb1[0], y[perm])
    return learn, cb, perm


@pytest.mark.parametrize("box", [(1, 2, 5, 6), (0, 0, 3, 7), (2, 3, 6, 4), (0, 0, 6, 7), (3, 3, 3, 5)])
def test_cutmix_equals_fastai_cutmix(box):
    x, y, logits = batch(seed=7)
    learn, cb, perm = run_fastai_cutmix(x, y, 7, box)
    x_mixed, y_mixed = cutmix(x, y, 0.5, perm, box, n_classes=5)
    assert_close(x_mixed, learn.xb[0], rtol=0, atol=0)
    top, left, bottom, right = box
    assert_close(float(cb.lam), 1 - (bottom - top) * (right - left) / (6 * 7))
    fastai_loss = learn.loss_func(logits, *learn.yb)
    assert_close(soft_ce(logits, y_mixed), fastai_loss.as_subclass(torch.Tensor))
    cb.after_train()


def test_cutmix_lam_comes_from_the_clipped_box():
    """A box asked for lam = 0.75 near a corner is clipped: the targets use the area actually pasted."""
    x, y, _ = batch(n=4, shape=(3, 8, 8), seed=8)
    perm = torch.tensor([1, 2, 3, 0])
    box = (0, 0, 2, 3)                         # a 4 x 4 box (lam = 0.75) centred at (0, 1), clipped
    x_mixed, y_mixed = cutmix(x, y, 0.75, perm, box, n_classes=5)
    kept = 1 - 6 / 64
    one_hot = F.one_hot(y, 5).float()
    assert_close(y_mixed, kept * one_hot + (1 - kept) * one_hot[perm])
    assert torch.equal(x_mixed[:, :, :2, :3], x[perm][:, :, :2, :3])
    outside = torch.ones(8, 8, dtype=torch.bool)
    outside[:2, :3] = False
    assert torch.equal(x_mixed[:, :, outside], x[:, :, outside])


@pytest.mark.parametrize("alpha", [0.1, 0.4, 1.0, 3.0])
def test_sample_lam_follows_beta_alpha_alpha(alpha):
    # float64: in float32 about 9 % of Beta(0.1, 0.1) draws round to exactly 1.0, a step the KS test sees
    lam = sample_lam(alpha, 20000, torch.Generator().manual_seed(11), dtype=torch.float64)
    assert lam.shape == (20000,) and lam.dtype == torch.float64
    assert 0 <= float(lam.min()) and float(lam.max()) <= 1
    result = scipy.stats.kstest(lam.double().numpy(), scipy.stats.beta(alpha, alpha).cdf)
    assert result.pvalue > 1e-4, result
    # fastai's folded draws follow another law: max(lam, 1 - lam) >= 0.5.
    folded = torch.maximum(lam, 1 - lam).double().numpy()
    assert scipy.stats.kstest(folded, scipy.stats.beta(alpha, alpha).cdf).pvalue < 1e-6


def test_sample_lam_depends_on_the_generator_only():
    state = torch.get_rng_state()
    torch.manual_seed(1)
    a = sample_lam(0.4, 50, torch.Generator().manual_seed(5))
    torch.manual_seed(2)
    b = sample_lam(0.4, 50, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    g = torch.Generator().manual_seed(5)
    assert not torch.equal(sample_lam(0.4, 50, g), sample_lam(0.4, 50, g))
    torch.manual_seed(1)
    before = torch.get_rng_state()
    sample_lam(0.4, 50, torch.Generator().manual_seed(5))
    assert torch.equal(torch.get_rng_state(), before)
    torch.set_rng_state(state)
    assert sample_lam(0.4, 0, g).shape == (0,)
    assert sample_lam(0.05, 10, g, dtype=torch.float64).dtype == torch.float64


def test_rand_box_sides_clipping_and_centre():
    g = torch.Generator().manual_seed(3)
    h, w, lam = 20, 60, 0.75                                   # sides 10 x 30 before clipping
    boxes = [rand_box(h, w, lam, g) for _ in range(2000)]
    for top, left, bottom, right in boxes:
        assert 0 <= top <= bottom <= h and 0 <= left <= right <= w
        assert bottom - top <= 10 and right - left <= 30
        if 0 < top and bottom < h:
            assert bottom - top == 10
        if 0 < left and right < w:
            assert right - left == 30
    assert all(type(v) is int for v in boxes[0])
    # centres uniform over the grid: the unclipped top row is centre - 5, so top = 0 exactly when centre <= 5
    tops = torch.tensor([b[0] for b in boxes])
    assert abs(float((tops == 0).double().mean()) - 6 / 20) < 0.05
    assert rand_box(h, w, 0.75, torch.Generator().manual_seed(9)) == rand_box(h, w, 0.75, torch.Generator().manual_seed(9))
    top, left, bottom, right = rand_box(5, 7, 1.0, g)
    assert bottom == top and right == left                     # lam = 1: nothing pasted


def test_inputs_unchanged_dtype_and_device_followed():
    x, y, _ = batch(dtype=torch.float64, seed=9)
    x0, y0 = x.clone(), y.clone()
    lam, perm = torch.rand(8), torch.randperm(8)
    for images, targets in (mixup(x, y, lam, perm, 5), cutmix(x, y, 0.5, perm, (1, 1, 4, 4), 5)):
        assert images.dtype == torch.float64 and targets.dtype == torch.float64
        assert images.data_ptr() != x.data_ptr()
    assert torch.equal(x, x0) and torch.equal(y, y0)
    assert mixup(x.float(), F.one_hot(y, 5).half(), lam, perm)[1].dtype == torch.float16
    assert_close(mixup(x, y, 0.3, perm, 5)[0], mixup(x, y, torch.full((8,), 0.3), perm, 5)[0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    x, y, _ = batch()
    lam, perm = torch.rand(8), torch.randperm(8)
    cpu = mixup(x, y, lam, perm, 5)
    gpu = mixup(x.cuda(), y.cuda(), lam, perm, 5)        # lam and perm may stay on the CPU
    assert gpu[0].is_cuda and gpu[1].is_cuda
    assert_close(gpu[0].cpu(), cpu[0])
    assert_close(cutmix(x.cuda(), y.cuda(), 0.5, perm.cuda(), (1, 1, 4, 4), 5)[0].cpu(),
                 cutmix(x, y, 0.5, perm, (1, 1, 4, 4), 5)[0])
    assert sample_lam(0.4, 10, torch.Generator(device="cuda").manual_seed(0)).is_cuda


X, Y = torch.zeros(4, 3, 5, 5), torch.tensor([0, 1, 2, 3])
LAM, PERM = torch.full((4,), 0.5), torch.tensor([1, 0, 3, 2])


@pytest.mark.parametrize("args, kwargs, error", [
    ((X, Y, LAM, PERM), {}, ValueError),                                   # class indices without n_classes
    ((X, Y, LAM, PERM), {"n_classes": 3}, ValueError),                     # label 3 out of range
    ((X, Y, torch.full((4,), 1.5), PERM, 4), {}, ValueError),              # lam > 1
    ((X, Y, torch.full((4,), -0.1), PERM, 4), {}, ValueError),             # lam < 0
    ((X, Y, torch.full((4,), math.nan), PERM, 4), {}, ValueError),
    ((X, Y, torch.full((3,), 0.5), PERM, 4), {}, ValueError),              # one lam too few
    ((X, Y, LAM, torch.tensor([1, 0, 3])), {"n_classes": 4}, ValueError),  # perm too short
    ((X, Y, LAM, torch.tensor([1, 1, 3, 2])), {"n_classes": 4}, ValueError),  # not a permutation
    ((X, Y, LAM, torch.tensor([1, 0, 3, 4])), {"n_classes": 4}, ValueError),
    ((X, Y[:3], LAM, PERM, 4), {}, ValueError),                            # 3 labels for 4 images
    ((X, torch.zeros(4, 3, 2), LAM, PERM), {}, ValueError),               # float targets of the wrong rank
    ((X.long(), Y, LAM, PERM, 4), {}, TypeError),                          # integer images
    ((X, Y, LAM, PERM.float(), 4), {}, TypeError),
    ((X, Y, "0.5", PERM, 4), {}, TypeError),
    (([[0.0]] * 4, Y, LAM, PERM, 4), {}, TypeError),
])
def test_mixup_rejects_bad_arguments(args, kwargs, error):
    with pytest.raises(error):
        mixup(*args, **kwargs)


@pytest.mark.parametrize("args, error", [
    ((X, Y, 0.5, PERM, (0, 0, 6, 2), 4), ValueError),     # box beyond the image
    ((X, Y, 0.5, PERM, (3, 0, 2, 2), 4), ValueError),     # bottom above top
    ((X, Y, 1.5, PERM, (0, 0, 2, 2), 4), ValueError),
    ((X, Y, 0.5, PERM[:3], (0, 0, 2, 2), 4), ValueError),
    ((X[0], Y, 0.5, PERM, (0, 0, 2, 2), 4), ValueError),  # not a batch
    ((X, Y, 0.5, PERM, (0, 0, 2), 4), TypeError),
    ((X, Y, 0.5, PERM, (0, 0, 2.0, 2), 4), TypeError),
])
def test_cutmix_rejects_bad_arguments(args, error):
    with pytest.raises(error):
        cutmix(*args)


@pytest.mark.parametrize("args, error", [
    ((0.0, 4), ValueError), ((-1.0, 4), ValueError), ((math.inf, 4), ValueError), ((0.4, -1), ValueError),
    ((0.4, 2.0), TypeError), (("0.4", 4), TypeError),
])
def test_sample_lam_rejects_bad_arguments(args, error):
    with pytest.raises(error):
        sample_lam(*args, torch.Generator())
    with pytest.raises(TypeError, match="torch.Generator"):
        sample_lam(0.4, 4, 0)


@pytest.mark.parametrize("args, error", [
    ((0, 5, 0.5), ValueError), ((5, 5, 1.2), ValueError), ((5, 5, -0.2), ValueError), ((5.0, 5, 0.5), TypeError),
])
def test_rand_box_rejects_bad_arguments(args, error):
    with pytest.raises(error):
        rand_box(*args, torch.Generator())


def test_error_messages_say_what_is_wrong():
    with pytest.raises(ValueError, match="pass n_classes"):
        mixup(X, Y, LAM, PERM)
    with pytest.raises(ValueError, match="permutation"):
        mixup(X, Y, LAM, torch.tensor([0, 0, 1, 2]), 4)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        mixup(X, Y, torch.full((4,), 2.0), PERM, 4)
    with pytest.raises(ValueError, match="does not lie in a 5 x 5 image"):
        cutmix(X, Y, 0.5, PERM, (0, 0, 6, 2), 4)


# ------------------------------------------------------------------------- the graded checks' own inputs
SEEDED_CHECKS = [c for c in REGISTRY.values() if c.target in SEEDED_TARGETS.values()]
REFERENCE_BY_TARGET = {SEEDED_TARGETS["sample_lam"]: sample_lam, SEEDED_TARGETS["rand_box"]: rand_box}


@pytest.mark.parametrize("seed", [seed_for("tests", s, "x") for s in ("ada", "grace", "alan")])
@pytest.mark.parametrize("check", SEEDED_CHECKS, ids=lambda c: c.grade_id)
def test_reference_passes_through_the_seeded_wrapper(check, seed):
    """tests/test_mutants.py judges functions named in the reference's __all__; these go through `seeded`."""
    verdict = record_in_process(check, seeded(REFERENCE_BY_TARGET[check.target]), seed)
    assert verdict.passed, verdict.message


def test_fastai_instantiates_a_callback_class_given_as_cbs():
    """Why the Q8 check accepts `cbs=MixUp` as well as `cbs=MixUp()`: Learner.add_cb calls a class."""
    learn = tiny_learner(CrossEntropyLossFlat())
    learn.add_cbs(MixUp)
    assert any(type(cb) is MixUp for cb in learn.cbs)


def test_q8_answers():
    check = REGISTRY["q8_cbs"]
    right = ["MixUp()", "[MixUp()]", "MixUp(0.4)", "cbs=MixUp(alpha=0.2)", "MixUp", "(MixUp(),)",
             "[MixUp(), SaveModelCallback()]", " fastai.callback.mixup.MixUp() "]
    wrong = ["mixup", "Mixup()", "mixup()", "Mixup", "CutMix()", "MixUp(-1)", "MixUp(a)", "[MixUp(), MixUp()]",
             "SaveModelCallback()", "", "MixUp((", 1, None, ["MixUp()"]]
    for answer in right:
        verdict = record_in_process(check, answer, 0)
        assert verdict.passed, (answer, verdict.message)
    for answer in wrong:
        assert not record_in_process(check, answer, 0).passed, answer
    seed = record_in_process(check, SEED_Q8_ANSWER, 0)
    assert "`mixup` is not a name fastai defines" in seed.message and "`MixUp`" in seed.message

"""The label smoothing reference against torch and fastai (trusted implementations)."""
import pytest
import torch
import torch.nn.functional as F
from fastai.losses import LabelSmoothingCrossEntropy
from torch.testing import assert_close

from autograder.reference.label_smoothing import label_smoothing_ce, smooth_targets

TOL = {"atol": 1e-6, "rtol": 1e-6}


def batch(n=16, k=10, dtype=torch.float32, seed=0, scale=3.0, extra=()):
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(n, k, *extra, generator=g, dtype=torch.float64) * scale).to(dtype)
    y = torch.randint(0, k, (n, *extra), generator=g)
    return logits, y


def value_and_grad(loss_fn, logits, y):
    x = logits.detach().clone().requires_grad_(True)
    loss = loss_fn(x, y)
    loss.backward(torch.ones_like(loss))
    return loss.detach(), x.grad


def test_the_questionnaire_target():
    """Five categories, index 1, eps = 0.1: eps/K = 0.02 off, 1 - eps + eps/K = 0.92 on."""
    targets = smooth_targets(torch.tensor([1]), 5, 0.1, dtype=torch.float64)
    assert_close(targets, torch.tensor([[0.02, 0.92, 0.02, 0.02, 0.02]], dtype=torch.float64), atol=1e-12, rtol=0)
    seed_answer = torch.tensor([[0.01, 0.01, 0.01, 0.96, 0.01]], dtype=torch.float64)
    assert not torch.allclose(targets, seed_answer)


@pytest.mark.parametrize("k, eps", [(2, 0.1), (5, 0.3), (10, 0.1), (1000, 0.05), (7, 0.0)])
def test_smooth_targets_values_and_rows_sum_to_one(k, eps):
    y = torch.randint(0, k, (12,), generator=torch.Generator().manual_seed(k))
    targets = smooth_targets(y, k, eps)
    assert targets.dtype == torch.float32 and targets.shape == (12, k)
    expected = F.one_hot(y, k).double() * (1 - eps) + eps / k
    assert_close(targets.double(), expected, atol=1e-7, rtol=0)
    assert_close(targets.double().sum(1), torch.ones(12, dtype=torch.float64), atol=1e-6, rtol=0)
    assert torch.equal(targets.argmax(1), y)


def test_bag_of_tricks_convention_is_a_different_target():
    """He et al. (2019) put eps/(K-1) off and 1 - eps on: another target, with the same row sum."""
    k, eps = 5, 0.1
    ours = smooth_targets(torch.tensor([1]), k, eps, dtype=torch.float64)[0]
    theirs = torch.full((k,), eps / (k - 1), dtype=torch.float64)
    theirs[1] = 1 - eps
    assert_close(theirs.sum(), torch.tensor(1.0, dtype=torch.float64))
    assert not torch.allclose(ours, theirs)
    # With eps' = eps * K / (K - 1) our convention gives theirs: the two differ by a rescaled eps.
    assert_close(smooth_targets(torch.tensor([1]), k, eps * k / (k - 1), dtype=torch.float64)[0], theirs)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("k, eps", [(10, 0.1), (1000, 0.1), (3, 0.4), (5, 0.0)])
def test_loss_and_gradient_equal_torch(dtype, reduction, k, eps):
    logits, y = batch(k=k, dtype=dtype)
    ours = value_and_grad(lambda x, t: label_smoothing_ce(x, t, eps, reduction=reduction), logits, y)
    theirs = value_and_grad(lambda x, t: F.cross_entropy(x, t, label_smoothing=eps, reduction=reduction), logits, y)
    assert ours[0].dtype == dtype and ours[0].shape == theirs[0].shape
    assert_close(ours[0], theirs[0], **TOL)
    assert_close(ours[1], theirs[1], **TOL)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_loss_and_gradient_equal_fastai(dtype, reduction):
    logits, y = batch(k=10, dtype=dtype, seed=1)
    fastai_loss = LabelSmoothingCrossEntropy(eps=0.1, reduction=reduction)
    ours = value_and_grad(lambda x, t: label_smoothing_ce(x, t, 0.1, reduction=reduction), logits, y)
    theirs = value_and_grad(fastai_loss, logits, y)
    assert_close(ours[0], theirs[0], **TOL)
    assert_close(ours[1], theirs[1], **TOL)


def test_loss_equals_cross_entropy_against_smooth_targets():
    logits, y = batch(k=7, dtype=torch.float64)
    targets = smooth_targets(y, 7, 0.2, dtype=torch.float64)
    explicit = -(targets * F.log_softmax(logits, 1)).sum(1)
    assert_close(label_smoothing_ce(logits, y, 0.2, reduction="none"), explicit, atol=1e-12, rtol=1e-12)
    # torch also accepts probability targets; the same value again.
    assert_close(label_smoothing_ce(logits, y, 0.2), F.cross_entropy(logits, targets), atol=1e-12, rtol=1e-12)


def test_gradient_is_softmax_minus_target():
    logits, y = batch(n=6, k=5, dtype=torch.float64)
    _, grad = value_and_grad(lambda x, t: label_smoothing_ce(x, t, 0.1, reduction="sum"), logits, y)
    assert_close(grad, logits.softmax(1) - smooth_targets(y, 5, 0.1, dtype=torch.float64), atol=1e-12, rtol=0)


def test_spatial_logits_like_torch():
    logits, y = batch(n=3, k=4, extra=(5, 6), dtype=torch.float64)
    for reduction in ("mean", "sum", "none"):
        assert_close(label_smoothing_ce(logits, y, 0.1, reduction=reduction),
                     F.cross_entropy(logits, y, label_smoothing=0.1, reduction=reduction), **TOL)


def test_large_logits_stay_finite():
    logits, y = batch(k=10, scale=1e4)
    loss = label_smoothing_ce(logits, y, 0.1)
    assert torch.isfinite(loss)
    assert_close(loss, F.cross_entropy(logits, y, label_smoothing=0.1), rtol=1e-6, atol=1e-3)


def test_where_torch_and_fastai_differ_class_weights():
    """With class weights, torch weights the smoothing term too; fastai weights only the NLL term."""
    logits, y = batch(k=4, dtype=torch.float64, seed=3)
    weight = torch.tensor([1.0, 2.0, 0.5, 3.0], dtype=torch.float64)
    torch_loss = F.cross_entropy(logits, y, weight=weight, label_smoothing=0.1)
    fastai_loss = LabelSmoothingCrossEntropy(eps=0.1, weight=weight)(logits, y)
    assert not torch.allclose(torch_loss, fastai_loss)
    assert_close(label_smoothing_ce(logits, y, 0.1), F.cross_entropy(logits, y, label_smoothing=0.1), **TOL)


def test_inputs_unchanged_and_dtype_device_followed():
    logits, y = batch(k=6, dtype=torch.float64)
    before_logits, before_y = logits.clone(), y.clone()
    loss = label_smoothing_ce(logits, y, 0.1)
    targets = smooth_targets(y, 6, 0.1, dtype=torch.float64)
    assert loss.dtype == torch.float64 and loss.device == logits.device and targets.device == y.device
    assert torch.equal(logits, before_logits) and torch.equal(y, before_y)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    logits, y = batch(k=10)
    assert_close(label_smoothing_ce(logits.cuda(), y.cuda(), 0.1).cpu(), label_smoothing_ce(logits, y, 0.1))
    assert smooth_targets(y.cuda(), 10, 0.1).is_cuda


@pytest.mark.parametrize("args, error", [
    ((torch.tensor([1]), 5, 1.0), ValueError),
    ((torch.tensor([1]), 5, -0.1), ValueError),
    ((torch.tensor([1]), 5, float("nan")), ValueError),
    ((torch.tensor([5]), 5, 0.1), ValueError),
    ((torch.tensor([-1]), 5, 0.1), ValueError),
    ((torch.tensor([1.0]), 5, 0.1), TypeError),
    ((torch.tensor([True]), 5, 0.1), TypeError),
    (([1, 2], 5, 0.1), TypeError),
    ((torch.tensor([1]), 0, 0.1), ValueError),
    ((torch.tensor([1]), 5.0, 0.1), TypeError),
    ((torch.tensor([1]), 5, "0.1"), TypeError),
    ((torch.tensor([[1]]), 5, 0.1), ValueError),
])
def test_smooth_targets_rejects_bad_arguments(args, error):
    with pytest.raises(error):
        smooth_targets(*args)


def test_error_messages_say_what_is_wrong():
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        smooth_targets(torch.tensor([1]), 5, 1.0)
    with pytest.raises(ValueError, match="class index 7 is out of range for 5 classes"):
        smooth_targets(torch.tensor([1, 7]), 5, 0.1)
    with pytest.raises(TypeError, match="integer class indices"):
        label_smoothing_ce(torch.zeros(2, 5), torch.tensor([1.0, 2.0]), 0.1)


@pytest.mark.parametrize("args, kwargs, error", [
    ((torch.zeros(2, 5), torch.tensor([1, 5]), 0.1), {}, ValueError),
    ((torch.zeros(2, 5), torch.tensor([1, 2]), 1.0), {}, ValueError),
    ((torch.zeros(2, 5), torch.tensor([1, 2, 3]), 0.1), {}, ValueError),
    ((torch.zeros(2, 5), torch.tensor([1.0, 2.0]), 0.1), {}, TypeError),
    ((torch.zeros(2, 5, dtype=torch.long), torch.tensor([1, 2]), 0.1), {}, TypeError),
    ((torch.zeros(5), torch.tensor(1), 0.1), {}, ValueError),
    ((torch.zeros(2, 5), torch.tensor([1, 2]), 0.1), {"reduction": "avg"}, ValueError),
])
def test_loss_rejects_bad_arguments(args, kwargs, error):
    with pytest.raises(error):
        label_smoothing_ce(*args, **kwargs)

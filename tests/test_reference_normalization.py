"""The normalization reference against torch and fastai (trusted implementations)."""
import math

import pytest
import torch
from torch.testing import assert_close
from fastai.vision.all import DataLoader, Normalize, TensorImage

from autograder.reference.normalization import (bessel_factor, channel_stats, normalize,
                                                streaming_channel_stats)


def images(seed=0, shape=(6, 3, 10, 8), dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g, dtype=torch.float64) * 0.2 + 0.5).to(dtype)


def test_channel_stats_matches_torch_over_n_h_w():
    x = images()
    mean, std = channel_stats(x)
    per_channel = x.transpose(0, 1).reshape(3, -1)
    assert_close(mean, per_channel.mean(1))
    assert_close(std, per_channel.std(1, correction=0))


def test_channel_stats_follows_dtype_and_leaves_input():
    x = images(dtype=torch.float64)
    before = x.clone()
    mean, std = channel_stats(x)
    assert mean.dtype == std.dtype == torch.float64
    assert torch.equal(x, before)


@pytest.mark.parametrize("bad, error", [(torch.zeros(3, 4, 4), ValueError), (torch.zeros(2, 3, 4, 4, dtype=torch.uint8), TypeError),
                                        ([1.0, 2.0], TypeError), (torch.zeros(0, 3, 4, 4), ValueError)])
def test_channel_stats_rejects_bad_input(bad, error):
    with pytest.raises(error):
        channel_stats(bad)


def test_normalize_equals_fastai_normalize_from_stats():
    x = images()
    mean, std = channel_stats(x)
    fastai_norm = Normalize.from_stats(mean, std, cuda=False)
    assert_close(normalize(x, mean, std), torch.as_tensor(fastai_norm(TensorImage(x))))


def test_normalized_batch_has_zero_mean_unit_std():
    x = images()
    mean, std = channel_stats(normalize(x, *channel_stats(x)))
    assert_close(mean, torch.zeros(3), atol=1e-6, rtol=0)
    assert_close(std, torch.ones(3), atol=1e-5, rtol=0)


def test_fastai_normalize_setup_uses_one_batch_and_unbiased_std():
    """fastai's Normalize() without statistics takes them from a single batch, with Bessel's correction."""
    first, second = images(1), images(2) + 1.0

    class OneBatchLoader(DataLoader):
        def one_batch(self):
            return TensorImage(first), torch.zeros(len(first))

    norm = Normalize()
    norm.setups(OneBatchLoader([0]))
    n = first.numel() // 3
    mean, std = channel_stats(first)
    assert_close(norm.mean.flatten(), mean)
    assert_close(norm.std.flatten(), std * bessel_factor(n) + 1e-7)  # fastai adds 1e-7
    whole_mean, _ = streaming_channel_stats([first, second])
    assert not torch.allclose(norm.mean.flatten(), whole_mean, atol=0.1)


def test_normalize_rejects_bad_statistics():
    x = images()
    with pytest.raises(ValueError, match="channels"):
        normalize(x, [0.5, 0.5], [0.2, 0.2])
    with pytest.raises(ValueError, match="positive"):
        normalize(x, [0.5] * 3, [0.2, 0.0, 0.2])
    with pytest.raises(TypeError):
        normalize(x, "mean", [0.2] * 3)


def test_streaming_equals_one_shot_on_uneven_batches_and_tuples():
    batches = [images(i, (n, 3, 7, 5)) for i, n in enumerate((4, 1, 7))]
    expected = channel_stats(torch.cat(batches))
    assert_close(streaming_channel_stats(iter([(b, None) for b in batches])), expected)


def test_streaming_is_stable_with_a_large_mean():
    batches = [(images(i, (8, 3, 16, 16), torch.float64) * 0.25 + 300.0).float() for i in range(20)]
    exact = channel_stats(torch.cat(batches).double())
    mean, std = streaming_channel_stats(batches)
    assert_close(std.double(), exact[1], rtol=1e-4, atol=0)
    naive = (torch.cat(batches).pow(2).mean((0, 2, 3)) - torch.cat(batches).mean((0, 2, 3)) ** 2).clamp(min=0).sqrt()
    assert not torch.allclose(naive.double(), exact[1], rtol=1e-2), "the test input must defeat the naive float32 formula"


def test_streaming_rejects_empty_and_channel_mismatch():
    with pytest.raises(ValueError, match="empty"):
        streaming_channel_stats([])
    with pytest.raises(ValueError, match="channels"):
        streaming_channel_stats([images(0), images(1, (2, 1, 4, 4))])


def test_bessel_factor():
    assert math.isclose(bessel_factor(4), math.sqrt(4 / 3))
    with pytest.raises(ValueError):
        bessel_factor(1)

"""Reference solutions of the normalization exercises.

Normalization maps each channel c to (x_c - mean_c) / std_c, with the statistics taken over every
image and pixel of the training set (axes N, H, W). The standard deviation here is the population
one (divide by the count, torch's `correction=0`); fastai's `Normalize.setups` uses the unbiased one
(`correction=1`) on a single batch, and the difference is the factor sqrt(n / (n - 1)).
"""
import math
from collections.abc import Iterable, Sequence

import torch

__all__ = ["channel_stats", "normalize", "streaming_channel_stats"]


def _check_images(x, name: str = "x", min_dim: int = 4, max_dim: int = 4) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}; convert images with x.float() / 255")
    if not min_dim <= x.ndim <= max_dim:
        want = f"{min_dim}" if min_dim == max_dim else f"{min_dim} to {max_dim}"
        raise ValueError(f"{name} must have {want} dimensions [N, C, H, W], got shape {list(x.shape)}")
    if x.numel() == 0:
        raise ValueError(f"{name} is empty (shape {list(x.shape)}); statistics need at least one pixel")


def channel_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and population standard deviation of a batch of images.

    Args:
        x: float tensor [N, C, H, W].

    Returns:
        (mean, std), each of shape [C], dtype and device of `x`; std uses correction=0.
    """
    _check_images(x)
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3), correction=0)
    return mean, std


def _as_channel_vector(v, like: torch.Tensor, name: str) -> torch.Tensor:
    if isinstance(v, torch.Tensor):
        out = v.detach().to(device=like.device, dtype=like.dtype)
    elif isinstance(v, Sequence) and not isinstance(v, str):
        out = torch.tensor(list(v), device=like.device, dtype=like.dtype)
    else:
        raise TypeError(f"{name} must be a tensor or a sequence of numbers, got {type(v).__name__}")
    return out.reshape(-1)


def normalize(x: torch.Tensor, mean, std) -> torch.Tensor:
    """Normalize each channel: (x - mean[c]) / std[c]; returns a new tensor.

    Args:
        x: float tensor [..., C, H, W] (channels third from last).
        mean: C numbers (tensor or sequence).
        std: C positive numbers (tensor or sequence).
    """
    _check_images(x, min_dim=3, max_dim=8)
    mean = _as_channel_vector(mean, x, "mean")
    std = _as_channel_vector(std, x, "std")
    n_channels = x.shape[-3]
    for name, v in (("mean", mean), ("std", std)):
        if v.numel() != n_channels:
            raise ValueError(f"{name} has {v.numel()} values but x has {n_channels} channels")
    if not bool((std > 0).all()):
        raise ValueError(f"std must be positive in every channel, got {std.tolist()}")
    return (x - mean[:, None, None]) / std[:, None, None]


def _batch_images(batch) -> torch.Tensor:
    # A DataLoader yields (x, y) tuples; a plain iterable of tensors is accepted too.
    if isinstance(batch, (tuple, list)):
        if not batch:
            raise ValueError("a batch is an empty tuple; expected a tensor or (x, y)")
        batch = batch[0]
    return batch


def streaming_channel_stats(batches: Iterable) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and population std over all batches, in one pass and bounded memory.

    Combines per-batch (count, mean, M2) with the pairwise update of Chan, Golub & LeVeque (1979),
    in float64, so the result equals `channel_stats` of the concatenated batches.

    Args:
        batches: an iterable (a DataLoader, a list, a one-shot iterator) of tensors [B, C, H, W]
            or of tuples whose first element is such a tensor.

    Returns:
        (mean, std), each [C], in the dtype and on the device of the first batch.
    """
    count, mean, m2 = 0, None, None
    first = None
    for i, batch in enumerate(batches):
        x = _batch_images(batch)
        _check_images(x, name=f"batch {i}")
        if first is None:
            first = x
        elif x.shape[1] != first.shape[1]:
            raise ValueError(f"batch {i} has {x.shape[1]} channels, the first batch had {first.shape[1]}")
        xd = x.detach().to(torch.float64)
        n_b = xd.numel() // xd.shape[1]
        mean_b = xd.mean(dim=(0, 2, 3))
        m2_b = ((xd - mean_b[None, :, None, None]) ** 2).sum(dim=(0, 2, 3))
        if mean is None:
            count, mean, m2 = n_b, mean_b, m2_b
            continue
        mean_b, m2_b = mean_b.to(mean.device), m2_b.to(mean.device)
        total = count + n_b
        delta = mean_b - mean
        mean = mean + delta * (n_b / total)
        m2 = m2 + m2_b + delta**2 * (count * n_b / total)
        count = total
    if first is None:
        raise ValueError("batches is empty: no images to compute statistics from")
    std = torch.sqrt(m2 / count)
    return mean.to(device=first.device, dtype=first.dtype), std.to(device=first.device, dtype=first.dtype)


def bessel_factor(n: int) -> float:
    """Ratio of the unbiased to the population standard deviation for n values."""
    if n < 2:
        raise ValueError(f"n must be at least 2, got {n}")
    return math.sqrt(n / (n - 1))

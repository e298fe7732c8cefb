"""Wrong normalization code that students really write. `breaks`: the checks each must fail."""
import torch

from autograder.golden.mutants import Mutant

IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def stats_wrong_axes(x):
    # mean over N and C instead of N, H, W: one number per row of pixels
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError("x must be a float tensor")
    if x.ndim != 4 or x.numel() == 0:
        raise ValueError("x must be [N, C, H, W]")
    return x.mean(dim=(0, 1, 3)), x.std(dim=(0, 1, 3), correction=0)


def stats_unbiased(x):
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError("x must be a float tensor")
    if x.ndim != 4 or x.numel() == 0:
        raise ValueError("x must be [N, C, H, W]")
    return x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3))


def stats_no_checks(x):
    return x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3), correction=0)


def stats_imagenet(x):
    # returns ImageNet's statistics whatever the data
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError("x must be a float tensor")
    if x.ndim != 4 or x.numel() == 0:
        raise ValueError("x must be [N, C, H, W]")
    return (torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device),
            torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device))


def _checked_stats(mean, std, x):
    mean = torch.as_tensor(mean, dtype=x.dtype, device=x.device)
    std = torch.as_tensor(std, dtype=x.dtype, device=x.device)
    if mean.numel() != x.shape[-3] or std.numel() != x.shape[-3]:
        raise ValueError("one mean and std per channel")
    if (std <= 0).any():
        raise ValueError("std must be positive")
    return mean[:, None, None], std[:, None, None]


def normalize_swapped(x, mean, std):
    mean, std = _checked_stats(mean, std, x)
    return (x - std) / mean


def normalize_in_place(x, mean, std):
    mean, std = _checked_stats(mean, std, x)
    return x.sub_(mean).div_(std)


def normalize_last_axis(x, mean, std):
    # broadcasts over the width instead of the channels (works only when W == C)
    mean, std = _checked_stats(mean, std, x)
    return (x - mean.flatten()) / std.flatten()


def normalize_guesses_channel_axis(x, mean, std):
    # takes the last of an image's axes whose size is the number of statistics as the channel axis
    # (channels-last first): right whenever no other side of the image equals the channel count
    mean = torch.as_tensor(mean, dtype=x.dtype, device=x.device)
    std = torch.as_tensor(std, dtype=x.dtype, device=x.device)
    if mean.ndim != 1 or mean.shape != std.shape:
        raise ValueError("one mean and std per channel")
    if (std <= 0).any():
        raise ValueError("std must be positive")
    axes = [i for i in range(max(0, x.ndim - 3), x.ndim) if x.shape[i] == len(mean)]  # [C, H, W] of each image
    if not axes:
        raise ValueError("no axis has one entry per statistic")
    shape = [1] * x.ndim
    shape[axes[-1]] = len(mean)
    return (x - mean.reshape(shape)) / std.reshape(shape)


def normalize_no_checks(x, mean, std):
    mean = torch.as_tensor(mean, dtype=x.dtype, device=x.device)
    std = torch.as_tensor(std, dtype=x.dtype, device=x.device)
    return (x - mean[:, None, None]) / std[:, None, None]


def _images(batch):
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def streaming_one_batch(batches):
    # estimates from the first batch only, as fastai's Normalize() does when given no statistics
    for batch in batches:
        x = _images(batch)
        return x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3), correction=0)
    raise ValueError("no batches")


def streaming_mean_of_batch_stats(batches):
    # averages per-batch means and stds: wrong when batches differ in size
    means, stds = [], []
    for batch in batches:
        x = _images(batch)
        means.append(x.mean(dim=(0, 2, 3)))
        stds.append(x.std(dim=(0, 2, 3), correction=0))
    if not means:
        raise ValueError("no batches")
    return torch.stack(means).mean(0), torch.stack(stds).mean(0)


def streaming_naive_float32(batches):
    # E[x^2] - E[x]^2 accumulated in the input dtype: cancels catastrophically for a large mean
    total = total_sq = None
    count = 0
    for batch in batches:
        x = _images(batch)
        s, sq = x.sum(dim=(0, 2, 3)), (x * x).sum(dim=(0, 2, 3))
        total = s if total is None else total + s
        total_sq = sq if total_sq is None else total_sq + sq
        count += x.numel() // x.shape[1]
    if total is None:
        raise ValueError("no batches")
    mean = total / count
    return mean, (total_sq / count - mean**2).clamp(min=0).sqrt()


def streaming_two_passes(batches):
    # a first pass for the mean, a second for the variance: a one-shot iterator is empty the second time
    total, count, first = 0.0, 0, None
    for batch in batches:
        x = _images(batch)
        first = x if first is None else first
        total = total + x.double().sum(dim=(0, 2, 3))
        count += x.numel() // x.shape[1]
    if first is None:
        raise ValueError("no batches")
    mean = total / count
    sq = torch.zeros_like(mean)
    for batch in batches:
        x = _images(batch)
        sq = sq + ((x.double() - mean[None, :, None, None]) ** 2).sum(dim=(0, 2, 3))
    return mean.to(first.dtype), (sq / count).sqrt().to(first.dtype)


VALUES, ERRORS = "channel_stats_values", "channel_stats_errors"
N_VALUES, N_ERRORS = "normalize_values", "normalize_errors"
S_VALUES, S_STABLE, S_ERRORS = "streaming_stats_values", "streaming_stats_stable", "streaming_stats_errors"

MUTANTS = [
    Mutant("statistics over the wrong axes", "channel_stats", stats_wrong_axes, frozenset({VALUES})),
    Mutant("unbiased std (n - 1)", "channel_stats", stats_unbiased, frozenset({VALUES})),
    Mutant("ImageNet statistics instead of the data's", "channel_stats", stats_imagenet, frozenset({VALUES})),
    Mutant("no argument checks", "channel_stats", stats_no_checks, frozenset({ERRORS})),
    Mutant("mean and std swapped", "normalize", normalize_swapped, frozenset({N_VALUES})),
    Mutant("normalizes the input in place", "normalize", normalize_in_place, frozenset({N_VALUES})),
    # It crashes on valid inputs whose width is not C, so it also loses the error check.
    Mutant("statistics broadcast over the width", "normalize", normalize_last_axis, frozenset({N_VALUES, N_ERRORS})),
    Mutant("no argument checks", "normalize", normalize_no_checks, frozenset({N_ERRORS})),
    Mutant("guesses the channel axis by its size", "normalize", normalize_guesses_channel_axis, frozenset({N_VALUES})),
    Mutant("one-batch estimate", "streaming_channel_stats", streaming_one_batch, frozenset({S_VALUES, S_STABLE})),
    Mutant("mean of per-batch statistics", "streaming_channel_stats", streaming_mean_of_batch_stats,
           frozenset({S_VALUES})),
    Mutant("naive E[x^2] - E[x]^2 in float32", "streaming_channel_stats", streaming_naive_float32,
           frozenset({S_STABLE})),
    Mutant("reads the batches twice", "streaming_channel_stats", streaming_two_passes, frozenset({S_VALUES})),
]

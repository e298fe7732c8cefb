"""Reference solutions of the test-time augmentation exercises.

Five-crop TTA (Krizhevsky, Sutskever & Hinton, "ImageNet Classification with Deep Convolutional
Neural Networks", NeurIPS 2012, section 4.1, which used these five crops and their mirror images)
predicts on the four corner crops and the centre crop of an image and averages the class
probabilities:

    p(x) = 1/5 * sum_{k=1..5} softmax(f(crop_k(x)))

The crops follow torchvision's ``five_crop``: order top-left, top-right, bottom-left, bottom-right,
centre, and the centre crop's top-left corner at ``int(round((H - h) / 2))``, ``int(round((W - w) / 2))``
with Python's ``round`` (ties to even: an offset of 0.5 rounds to 0, 1.5 to 2, 2.5 to 2).
"""
import numbers
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["five_crop", "five_crop_tta"]


def _crop_size(size) -> tuple[int, int]:
    if isinstance(size, bool):
        raise TypeError("size must be an int or a pair (h, w) of ints, got a bool")
    if isinstance(size, numbers.Integral):
        h = w = int(size)
    elif isinstance(size, Sequence) and not isinstance(size, str) and len(size) in (1, 2):
        if not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in size):
            raise TypeError(f"size must hold ints, got {list(size)!r}")
        h, w = (int(size[0]), int(size[-1]))
    else:
        raise TypeError(f"size must be an int or a pair (h, w) of ints, got {size!r}")
    if h < 1 or w < 1:
        raise ValueError(f"the crop size must be positive, got (h, w) = ({h}, {w})")
    return h, w


def _centre_offset(extent: int, crop: int) -> int:
    # torchvision's rounding: Python's round() sends ties to the even integer.
    return int(round((extent - crop) / 2.0))


def five_crop(x: torch.Tensor, size) -> torch.Tensor:
    """The four corner crops and the centre crop of every image of a batch, stacked.

    Equal to ``torch.stack(torchvision.transforms.v2.functional.five_crop(x, size))``.

    Args:
        x: tensor [N, C, H, W] (any dtype).
        size: the crop's side as an int, or its (h, w).

    Returns:
        Tensor [5, N, C, h, w], crops in the order top-left, top-right, bottom-left, bottom-right,
        centre; dtype and device of `x`.

    Raises:
        TypeError: `x` is not a tensor, or `size` is not an int or a pair of ints.
        ValueError: `x` is not 4-dimensional, the crop is larger than the image, or not positive.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"x must be a batch [N, C, H, W], got shape {list(x.shape)}")
    h, w = _crop_size(size)
    height, width = x.shape[-2:]
    if h > height or w > width:
        raise ValueError(f"the crop (h, w) = ({h}, {w}) is larger than the images ({height}, {width})")
    top, left = _centre_offset(height, h), _centre_offset(width, w)
    return torch.stack([
        x[..., :h, :w],
        x[..., :h, width - w:],
        x[..., height - h:, :w],
        x[..., height - h:, width - w:],
        x[..., top:top + h, left:left + w],
    ])


def five_crop_tta(model: nn.Module, x: torch.Tensor, size) -> torch.Tensor:
    """Class probabilities averaged over the five crops of each image.

    The model predicts in eval mode (BatchNorm's running statistics, no dropout) and without
    autograd; every module's training flag is put back as it was, also when the model raises.
    The crops go through the model one at a time, each a batch of N images: on a CPU one batch of
    5 N images is slower (about 6.6 x a plain pass instead of 5 x; see bench/tta.py), its
    activations no longer fitting in cache, and it needs five times the memory.

    Args:
        model: a classifier returning logits [B, K] for images [B, C, h, w].
        x: images [N, C, H, W], on the model's device, larger than the crop.
        size: the crop's side as an int, or its (h, w): the model's input size.

    Returns:
        Probabilities [N, K] (each row sums to 1), on the device of `x`, in the model's output dtype.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    crops = five_crop(x, size)
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            # Average probabilities, not logits: the mean of softmaxes is a mixture of the five predictions.
            probs = torch.stack([model(crop).softmax(dim=-1) for crop in crops]).mean(dim=0)
    finally:
        for module, training in modes:
            module.training = training
    return probs.to(x.device)

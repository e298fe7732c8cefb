"""Wrong five-crop and TTA code that students really write. `breaks`: the checks each must fail.

The `five_crop_tta` mutants are the student's function as written, calling `five_crop` (the
reference's here, the student's own in a notebook); `MUTANTS` wraps each in `run_probe`, exactly as
the hidden test cells do, because the checks call it on a probe model (see autograder/rubric/tta.py).
`RAW` keeps the unwrapped functions, and `crops_other_order` and every `tta_*` function are
self-contained, so `autograder.golden.build.function_source` can put them into whole submissions.
"""
import functools

import torch

from autograder.rubric.tta import PROBE_TARGET
from autograder.reference.tta import five_crop  # what the student's own five_crop is in the notebook
from autograder.golden.mutants import Mutant
from workbook.probes import run_probe


def _checked(x, size):
    if x.ndim != 4:
        raise ValueError("x must be [N, C, H, W]")
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    if h < 1 or w < 1 or h > x.shape[-2] or w > x.shape[-1]:
        raise ValueError("the crop does not fit")
    return h, w


def crops_corners_off_by_one(x, size):
    # the right and bottom crops start one pixel too far left / up: x[..., W - w - 1 : W - 1]
    h, w = _checked(x, size)
    H, W = x.shape[-2:]
    top, left = round((H - h) / 2), round((W - w) / 2)
    return torch.stack([x[..., :h, :w], x[..., :h, max(W - w - 1, 0):max(W - w - 1, 0) + w],
                        x[..., max(H - h - 1, 0):max(H - h - 1, 0) + h, :w],
                        x[..., max(H - h - 1, 0):max(H - h - 1, 0) + h, max(W - w - 1, 0):max(W - w - 1, 0) + w],
                        x[..., top:top + h, left:left + w]])


def _five(x, h, w, top, left):
    H, W = x.shape[-2:]
    return torch.stack([x[..., :h, :w], x[..., :h, W - w:], x[..., H - h:, :w], x[..., H - h:, W - w:],
                        x[..., top:top + h, left:left + w]])


def crops_centre_floor(x, size):
    # (H - h) // 2: the usual way to write a centre crop, but not torchvision's round-half-to-even
    h, w = _checked(x, size)
    H, W = x.shape[-2:]
    return _five(x, h, w, (H - h) // 2, (W - w) // 2)


def crops_centre_half_up(x, size):
    # (H - h + 1) // 2: ties rounded up
    h, w = _checked(x, size)
    H, W = x.shape[-2:]
    return _five(x, h, w, (H - h + 1) // 2, (W - w + 1) // 2)


def crops_four_only(x, size):
    # the four corners, no centre crop
    h, w = _checked(x, size)
    H, W = x.shape[-2:]
    return torch.stack([x[..., :h, :w], x[..., :h, W - w:], x[..., H - h:, :w], x[..., H - h:, W - w:]])


def crops_other_order(x, size):
    # centre first, then the corners clockwise (TL, TR, BR, BL)
    if x.ndim != 4:
        raise ValueError("x must be [N, C, H, W]")
    h, w = (size, size) if isinstance(size, int) else (size[0], size[-1])
    H, W = x.shape[-2:]
    if not (0 < h <= H and 0 < w <= W):
        raise ValueError("the crop does not fit in the images")
    top, left = int(round((H - h) / 2)), int(round((W - w) / 2))
    return torch.stack([x[..., top:top + h, left:left + w], x[..., :h, :w], x[..., :h, W - w:],
                        x[..., H - h:, W - w:], x[..., H - h:, :w]])


def crops_no_size_check(x, size):
    # slicing never complains: a crop larger than the image comes back smaller than asked
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    H, W = x.shape[-2:]
    return _five(x, h, w, round((H - h) / 2), round((W - w) / 2))


def tta_mean_of_logits(model, x, size):
    # averages the logits, then one softmax: not the mean of the five predictions
    crops = five_crop(x, size)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits = model(crops.flatten(0, 1)).reshape(5, x.shape[0], -1)
    finally:
        model.train(was_training)
    return logits.mean(dim=0).softmax(dim=-1)


def tta_majority_vote(model, x, size):
    # each crop votes for its argmax; returns the share of the votes per class
    crops = five_crop(x, size)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits = model(crops.flatten(0, 1)).reshape(5, x.shape[0], -1)
    finally:
        model.train(was_training)
    votes = torch.nn.functional.one_hot(logits.argmax(dim=-1), logits.shape[-1]).to(logits.dtype)
    return votes.mean(dim=0)


def tta_training_mode(model, x, size):
    # forgets model.eval(): dropout is active and BatchNorm uses the statistics of this batch
    crops = five_crop(x, size)
    with torch.no_grad():
        logits = model(crops.flatten(0, 1))
    return logits.softmax(dim=-1).reshape(5, x.shape[0], -1).mean(dim=0)


def tta_leaves_eval(model, x, size):
    # switches to eval mode and never switches back
    crops = five_crop(x, size)
    model.eval()
    with torch.no_grad():
        logits = model(crops.flatten(0, 1))
    return logits.softmax(dim=-1).reshape(5, x.shape[0], -1).mean(dim=0)


def tta_sets_flag_attribute(model, x, size):
    # model.training = was_training only changes the top module; its children stay in eval mode
    crops = five_crop(x, size)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits = model(crops.flatten(0, 1))
    finally:
        model.training = was_training
    return logits.softmax(dim=-1).reshape(5, x.shape[0], -1).mean(dim=0)


def tta_always_train_after(model, x, size):
    # model.train() at the end: a model that was in eval mode comes back in training mode
    crops = five_crop(x, size)
    model.eval()
    try:
        with torch.no_grad():
            logits = model(crops.flatten(0, 1))
    finally:
        model.train()
    return logits.softmax(dim=-1).reshape(5, x.shape[0], -1).mean(dim=0)


def tta_no_finally(model, x, size):
    # restores the mode only when the prediction succeeds
    crops = five_crop(x, size)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        logits = model(crops.flatten(0, 1))
    model.train(was_training)
    return logits.softmax(dim=-1).reshape(5, x.shape[0], -1).mean(dim=0)


def tta_with_grad(model, x, size):
    # eval mode but no torch.no_grad(): every call keeps an autograd graph of 5 N images
    crops = five_crop(x, size)
    was_training = model.training
    model.eval()
    try:
        logits = model(crops.flatten(0, 1))
    finally:
        model.train(was_training)
    return logits.softmax(dim=-1).reshape(5, x.shape[0], -1).mean(dim=0)


def tta_results_on_cpu(model, x, size):
    # .cpu() "to be safe": on a GPU the result leaves the input's device
    crops = five_crop(x, size)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits = model(crops.flatten(0, 1))
    finally:
        model.train(was_training)
    return logits.softmax(dim=-1).reshape(5, x.shape[0], -1).mean(dim=0).cpu()


def tta_centre_only(model, x, size):
    # one centre crop: no test-time augmentation at all
    crops = five_crop(x, size)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits = model(crops[4])
    finally:
        model.train(was_training)
    return logits.softmax(dim=-1)


def on_probe(fn):
    """The function the hidden test cells record: `fn` called on a probe model built from weights."""
    @functools.wraps(fn)
    def recorded(weights, x, size):
        return run_probe(fn, weights, x, size)
    return recorded


C_VALUES, C_ERRORS = "five_crop_values", "five_crop_errors"
T_VALUES, T_MODE, T_GRAD = "five_crop_tta_values", "five_crop_tta_mode", "five_crop_tta_no_grad"

# (name, function, checks it breaks). On the grader's CPU `tta_results_on_cpu` is right (the input is
# on the CPU too): it is caught only when grading on CUDA, where the judge compares the recorded device
# with the input's. tests/test_reference_tta.py shows the judge refusing it with a CUDA device string.
TTA = [
    ("averages logits instead of probabilities", tta_mean_of_logits, {T_VALUES}),
    ("majority vote of the argmaxes", tta_majority_vote, {T_VALUES}),
    ("predicts in training mode", tta_training_mode, {T_VALUES}),
    ("leaves the model in eval mode", tta_leaves_eval, {T_MODE}),
    ("restores model.training on the top module only", tta_sets_flag_attribute, {T_MODE}),
    ("calls model.train() afterwards whatever the mode was", tta_always_train_after, {T_MODE}),
    ("does not restore the mode when the model raises", tta_no_finally, {T_MODE}),
    ("predicts with autograd on", tta_with_grad, {T_GRAD}),
    ("centre crop only", tta_centre_only, {T_VALUES}),
    ("moves the result to the CPU (caught on CUDA only)", tta_results_on_cpu, set()),
]
RAW = {fn.__name__: fn for _, fn, _ in TTA}

MUTANTS = [
    Mutant("corners off by one", "five_crop", crops_corners_off_by_one, frozenset({C_VALUES})),
    Mutant("centre offset floored", "five_crop", crops_centre_floor, frozenset({C_VALUES})),
    Mutant("centre offset rounded half up", "five_crop", crops_centre_half_up, frozenset({C_VALUES})),
    Mutant("four crops only", "five_crop", crops_four_only, frozenset({C_VALUES})),
    Mutant("crops in another order", "five_crop", crops_other_order, frozenset({C_VALUES})),
    Mutant("no size check", "five_crop", crops_no_size_check, frozenset({C_ERRORS})),
    *(Mutant(name, PROBE_TARGET, on_probe(fn), frozenset(breaks)) for name, fn, breaks in TTA),
]

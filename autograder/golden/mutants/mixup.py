"""Wrong Mixup and CutMix code that students really write. `breaks`: the checks each must fail.

`sample_lam` and `rand_box` mutants are wrapped in `workbook.seeded.seeded`, as the hidden test cells
wrap the student's functions (see autograder/rubric/mixup.py); `RAW` keeps them unwrapped. Every
mutant does the argument checks right (`_checked*`), so each breaks only the behaviour it names.

The seed student (shared/seed/student_answers.md, "What is Mixup?") wrote
`Learner(dls, model, loss_func=CrossEntropyLossFlat(), metrics=accuracy, cbs=mixup)`: `SEED_Q8_ANSWER`.
"""
import math

import torch
import torch.nn.functional as F
from torch.distributions import Beta

from autograder.rubric.mixup import SEEDED_TARGETS
from autograder.golden.mutants import Mutant
from workbook.seeded import seeded

SEED_Q8_ANSWER = "mixup"


def _checked_lam(alpha, n):
    if not isinstance(n, int):
        raise TypeError("n must be an int")
    if not alpha > 0 or n < 0:
        raise ValueError("alpha must be > 0 and n >= 0")


def _checked(x, y, lam, perm, n_classes=None):
    """Argument checks done right; returns the targets as floats [N, K]."""
    n = x.shape[0]
    if isinstance(lam, torch.Tensor) and (lam.shape != (n,) or not bool(((lam >= 0) & (lam <= 1)).all())):
        raise ValueError("lam must be [N] in [0, 1]")
    if perm.shape != (n,) or not torch.equal(perm.sort().values, torch.arange(n)):
        raise ValueError("perm must be a permutation of the batch")
    if len(y) != n:
        raise ValueError("one label per image")
    if y.is_floating_point():
        return y
    return F.one_hot(y.long(), n_classes).to(x.dtype)


# ------------------------------------------------------------------------------------ sample_lam
def lam_folded(alpha, n, generator, dtype=torch.float32):
    # fastai's max(lam, 1 - lam): every draw >= 0.5, not Beta(alpha, alpha)
    lam = lam_from_generator(alpha, n, generator, dtype)
    return torch.maximum(lam, 1 - lam)


def lam_from_generator(alpha, n, generator, dtype=torch.float32):
    # a right sampler (the global generator forked and seeded from `generator`), used by other mutants
    _checked_lam(alpha, n)
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Beta(torch.tensor(float(alpha), dtype=torch.float64), torch.tensor(float(alpha), dtype=torch.float64)
                    ).sample((n,)).to(dtype)


def lam_global_generator(alpha, n, generator, dtype=torch.float32):
    # torch.distributions.Beta draws from the global generator; `generator` is ignored
    _checked_lam(alpha, n)
    return Beta(torch.tensor(float(alpha)), torch.tensor(float(alpha))).sample((n,)).to(dtype)


def lam_uniform(alpha, n, generator, dtype=torch.float32):
    # uniform lam: Beta(1, 1) whatever alpha
    _checked_lam(alpha, n)
    return torch.rand(n, generator=generator, dtype=torch.float64).to(dtype)


def lam_one_per_batch(alpha, n, generator, dtype=torch.float32):
    # one lam for the whole batch, repeated
    _checked_lam(alpha, n)
    return lam_from_generator(alpha, 1, generator, dtype).expand(n).clone()


def lam_no_checks(alpha, n, generator, dtype=torch.float32):
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        a = torch.tensor(abs(float(alpha)) + 1e-6, dtype=torch.float64)
        return Beta(a, a).sample((max(int(n), 0),)).to(dtype)


# ----------------------------------------------------------------------------------------- mixup
def mixup_images_only(x, y, lam, perm, n_classes=None):
    # mixes the images but returns the targets of the unmixed batch
    targets = _checked(x, y, lam, perm, n_classes)
    w = lam.to(x.dtype).view(-1, *[1] * (x.ndim - 1))
    return w * x + (1 - w) * x[perm], targets.clone()


def mixup_other_lam_for_targets(x, y, lam, perm, n_classes=None):
    # images with lam on x_i, targets with lam on the partner's label
    targets = _checked(x, y, lam, perm, n_classes)
    w = lam.to(x.dtype).view(-1, *[1] * (x.ndim - 1))
    wy = lam.to(targets.dtype)[:, None]
    return w * x + (1 - w) * x[perm], (1 - wy) * targets + wy * targets[perm]


def mixup_identity_perm(x, y, lam, perm, n_classes=None):
    # mixes each image with itself (the partner index is never used)
    targets = _checked(x, y, lam, perm, n_classes)
    w = lam.to(x.dtype).view(-1, *[1] * (x.ndim - 1))
    wy = lam.to(targets.dtype)[:, None]
    return w * x + (1 - w) * x, wy * targets + (1 - wy) * targets


def mixup_lam_not_broadcast(x, y, lam, perm, n_classes=None):
    # torch.lerp with lam [N] as it comes: it lines up with the *last* dimension of x, not with the samples
    targets = _checked(x, y, lam, perm, n_classes)
    return torch.lerp(x[perm], x, lam.to(x.dtype)), torch.lerp(targets[perm], targets, lam.to(targets.dtype)[:, None])


def mixup_in_place(x, y, lam, perm, n_classes=None):
    # lerp_ writes the mixed images into the caller's batch (the partner is read before it is overwritten)
    targets = _checked(x, y, lam, perm, n_classes)
    w = lam.to(x.dtype).view(-1, *[1] * (x.ndim - 1))
    wy = lam.to(targets.dtype)[:, None]
    return x.lerp_(x[perm], 1 - w), torch.lerp(targets[perm], targets, wy)


def mixup_no_checks(x, y, lam, perm, n_classes=None):
    targets = y if y.is_floating_point() else F.one_hot(y.long(), n_classes).to(x.dtype)
    w = lam.to(x.dtype).view(-1, *[1] * (x.ndim - 1))
    return w * x + (1 - w) * x[perm], lam.to(targets.dtype)[:, None] * targets + (1 - lam.to(targets.dtype)[:, None]) * targets[perm]


# ------------------------------------------------------------------------------------ mixup_loss
def _loss_checked(logits, y, lam, perm):
    n = logits.shape[0]
    if perm.shape != (n,) or y.shape != (n,) or lam.shape != (n,):
        raise ValueError("one label, lam and partner per row")


def _reduce(loss, reduction):
    return {"mean": loss.mean(), "sum": loss.sum(), "none": loss}[reduction]


def loss_lam_swapped(logits, y, lam, perm, reduction="mean"):
    # lam on the partner's loss
    _loss_checked(logits, y, lam, perm)
    own = F.cross_entropy(logits, y, reduction="none")
    partner = F.cross_entropy(logits, y[perm], reduction="none")
    return _reduce((1 - lam) * own + lam * partner, reduction)


def loss_of_the_mean_lam(logits, y, lam, perm, reduction="mean"):
    # one lam for the batch: the mean of lam
    _loss_checked(logits, y, lam, perm)
    m = lam.mean()
    return _reduce(m * F.cross_entropy(logits, y, reduction="none") + (1 - m) * F.cross_entropy(logits, y[perm], reduction="none"),
                   reduction)


def loss_always_mean(logits, y, lam, perm, reduction="mean"):
    _loss_checked(logits, y, lam, perm)
    return (lam * F.cross_entropy(logits, y, reduction="none") + (1 - lam) * F.cross_entropy(logits, y[perm], reduction="none")).mean()


# -------------------------------------------------------------------------------------- rand_box
def _sides(h, w, lam):
    if not 0 <= lam <= 1:
        raise ValueError("lam must be in [0, 1]")
    s = math.sqrt(1 - lam)
    return round(h * s), round(w * s)


def box_swapped(h, w, lam, generator):
    # the height drawn from w and the width from h
    cut_h, cut_w = _sides(w, h, lam)
    cy, cx = int(torch.randint(0, h, (1,), generator=generator)), int(torch.randint(0, w, (1,), generator=generator))
    return (min(max(cy - cut_h // 2, 0), h), min(max(cx - cut_w // 2, 0), w),
            min(max(cy - cut_h // 2 + cut_h, 0), h), min(max(cx - cut_w // 2 + cut_w, 0), w))


def box_side_one_minus_lam(h, w, lam, generator):
    # sides (1 - lam) * (h, w): the area is (1 - lam)^2 of the image instead of 1 - lam
    _sides(h, w, lam)
    cut_h, cut_w = round(h * (1 - lam)), round(w * (1 - lam))
    cy, cx = int(torch.randint(0, h, (1,), generator=generator)), int(torch.randint(0, w, (1,), generator=generator))
    return (min(max(cy - cut_h // 2, 0), h), min(max(cx - cut_w // 2, 0), w),
            min(max(cy - cut_h // 2 + cut_h, 0), h), min(max(cx - cut_w // 2 + cut_w, 0), w))


def box_kept_inside(h, w, lam, generator):
    # the centre drawn so that the box always fits: no clipping, but the corners are rarely covered
    cut_h, cut_w = _sides(h, w, lam)
    top = int(torch.randint(0, h - cut_h + 1, (1,), generator=generator))
    left = int(torch.randint(0, w - cut_w + 1, (1,), generator=generator))
    return top, left, top + cut_h, left + cut_w


def box_not_clipped(h, w, lam, generator):
    # forgets to clip: negative starts and ends beyond the image
    cut_h, cut_w = _sides(h, w, lam)
    cy, cx = int(torch.randint(0, h, (1,), generator=generator)), int(torch.randint(0, w, (1,), generator=generator))
    return cy - cut_h // 2, cx - cut_w // 2, cy - cut_h // 2 + cut_h, cx - cut_w // 2 + cut_w


# ---------------------------------------------------------------------------------------- cutmix
def _cut_checked(x, y, lam, perm, box, n_classes=None):
    n, h, w = x.shape[0], x.shape[-2], x.shape[-1]
    if not 0 <= lam <= 1:
        raise ValueError("lam must be in [0, 1]")
    if perm.shape != (n,):
        raise ValueError("one partner per image")
    top, left, bottom, right = box
    if not (0 <= top <= bottom <= h and 0 <= left <= right <= w):
        raise ValueError("the box must lie in the image")
    return y if y.is_floating_point() else F.one_hot(y.long(), n_classes).to(x.dtype)


def cutmix_lam_not_recomputed(x, y, lam, perm, box, n_classes=None):
    # targets mixed with the lam the box was drawn with, not with the area of the clipped box
    targets = _cut_checked(x, y, lam, perm, box, n_classes)
    top, left, bottom, right = box
    out = x.clone()
    out[..., top:bottom, left:right] = x[perm][..., top:bottom, left:right]
    return out, lam * targets + (1 - lam) * targets[perm]


def cutmix_in_place(x, y, lam, perm, box, n_classes=None):
    # pastes into the caller's batch, as fastai's CutMix callback does with learn.xb
    targets = _cut_checked(x, y, lam, perm, box, n_classes)
    top, left, bottom, right = box
    x[..., top:bottom, left:right] = x[perm][..., top:bottom, left:right]
    kept = 1 - (bottom - top) * (right - left) / (x.shape[-2] * x.shape[-1])
    return x, kept * targets + (1 - kept) * targets[perm]


def cutmix_area_swapped(x, y, lam, perm, box, n_classes=None):
    # lam' = box area / image area: the weight of the pasted part put on the image's own label
    targets = _cut_checked(x, y, lam, perm, box, n_classes)
    top, left, bottom, right = box
    out = x.clone()
    out[..., top:bottom, left:right] = x[perm][..., top:bottom, left:right]
    area = (bottom - top) * (right - left) / (x.shape[-2] * x.shape[-1])
    return out, area * targets + (1 - area) * targets[perm]


def cutmix_no_checks(x, y, lam, perm, box, n_classes=None):
    targets = y if y.is_floating_point() else F.one_hot(y.long(), n_classes).to(x.dtype)
    top, left, bottom, right = box
    out = x.clone()
    out[..., top:bottom, left:right] = x[perm][..., top:bottom, left:right]
    kept = 1 - (bottom - top) * (right - left) / (x.shape[-2] * x.shape[-1])
    return out, kept * targets + (1 - kept) * targets[perm]


LAM_VALUES, LAM_ERRORS = "sample_lam_values", "sample_lam_errors"
IMAGES, TARGETS, UNCHANGED, ERRORS = "mixup_images", "mixup_targets", "mixup_inputs_unchanged", "mixup_errors"
LOSS, BOX = "mixup_loss_values", "rand_box_values"
CUT_VALUES, CUT_ERRORS = "cutmix_values", "cutmix_errors"

RAW = {"lam_folded": lam_folded, "lam_global_generator": lam_global_generator, "lam_uniform": lam_uniform,
       "lam_one_per_batch": lam_one_per_batch, "lam_no_checks": lam_no_checks, "lam_from_generator": lam_from_generator,
       "box_swapped": box_swapped, "box_side_one_minus_lam": box_side_one_minus_lam,
       "box_kept_inside": box_kept_inside, "box_not_clipped": box_not_clipped}

MUTANTS = [
    Mutant("folds lam to max(lam, 1 - lam) like fastai", SEEDED_TARGETS["sample_lam"], seeded(lam_folded),
           frozenset({LAM_VALUES})),
    Mutant("torch.distributions.Beta on the global generator", SEEDED_TARGETS["sample_lam"],
           seeded(lam_global_generator), frozenset({LAM_VALUES})),
    Mutant("uniform lam whatever alpha", SEEDED_TARGETS["sample_lam"], seeded(lam_uniform), frozenset({LAM_VALUES})),
    Mutant("one lam for the batch", SEEDED_TARGETS["sample_lam"], seeded(lam_one_per_batch), frozenset({LAM_VALUES})),
    Mutant("no argument checks", SEEDED_TARGETS["sample_lam"], seeded(lam_no_checks), frozenset({LAM_ERRORS})),
    Mutant("mixes the images but not the targets", "mixup", mixup_images_only, frozenset({TARGETS})),
    Mutant("a different lam for the images and the targets", "mixup", mixup_other_lam_for_targets,
           frozenset({TARGETS})),
    Mutant("identity permutation: each image mixed with itself", "mixup", mixup_identity_perm,
           frozenset({IMAGES, TARGETS})),
    # It crashes on valid inputs, so it also loses the error check (whose valid inputs it must accept).
    Mutant("lam not broadcast per sample (torch.lerp with lam [N])", "mixup", mixup_lam_not_broadcast,
           frozenset({IMAGES, TARGETS, UNCHANGED, ERRORS})),
    Mutant("mixes the input batch in place (lerp_)", "mixup", mixup_in_place, frozenset({UNCHANGED})),
    Mutant("no argument checks", "mixup", mixup_no_checks, frozenset({ERRORS})),
    Mutant("lam on the partner's loss", "mixup_loss", loss_lam_swapped, frozenset({LOSS})),
    Mutant("one lam (the mean) for the batch", "mixup_loss", loss_of_the_mean_lam, frozenset({LOSS})),
    Mutant("ignores reduction", "mixup_loss", loss_always_mean, frozenset({LOSS})),
    Mutant("box height and width swapped", SEEDED_TARGETS["rand_box"], seeded(box_swapped), frozenset({BOX})),
    Mutant("box sides (1 - lam) * size", SEEDED_TARGETS["rand_box"], seeded(box_side_one_minus_lam), frozenset({BOX})),
    Mutant("centre drawn so that the box always fits", SEEDED_TARGETS["rand_box"], seeded(box_kept_inside),
           frozenset({BOX})),
    Mutant("box not clipped", SEEDED_TARGETS["rand_box"], seeded(box_not_clipped), frozenset({BOX})),
    Mutant("CutMix lam not recomputed after clipping", "cutmix", cutmix_lam_not_recomputed, frozenset({CUT_VALUES})),
    Mutant("pastes into the input batch in place (as fastai's callback)", "cutmix", cutmix_in_place,
           frozenset({CUT_VALUES})),
    Mutant("lam' = box area instead of 1 - box area", "cutmix", cutmix_area_swapped, frozenset({CUT_VALUES})),
    Mutant("no argument checks", "cutmix", cutmix_no_checks, frozenset({CUT_ERRORS})),
]

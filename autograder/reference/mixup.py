"""Reference solutions of the Mixup and CutMix exercises.

Mixup (Zhang et al., 2018, "mixup: Beyond Empirical Risk Minimization", eq. 1) trains on convex
combinations of two samples and of their one-hot targets,

    x~ = lam * x_i + (1 - lam) * x_j,      y~ = lam * y_i + (1 - lam) * y_j,      lam ~ Beta(alpha, alpha).

Here every sample i of a batch gets its own lam_i and its partner j = perm[i] from a permutation of
the batch, which is what fastai's `MixUp` callback does. fastai 2.8 also *folds* each lam to
max(lam, 1 - lam), so that the original image always dominates, and for integer targets it mixes the
two *losses*, lam * CE(z, y_i) + (1 - lam) * CE(z, y_j), which equals the cross-entropy against the
mixed one-hot target y~ because cross-entropy is linear in its target. `sample_lam` below does not fold:
it returns plain Beta(alpha, alpha) draws; `mixup` takes whatever lam it is given.

CutMix (Yun et al., 2019, "CutMix: Regularization Strategy to Train Strong Classifiers with Localizable
Features", eq. 1-2 and section 3.1) pastes a box of the partner image instead of blending:
x~ = M * x_i + (1 - M) * x_j with a binary mask M that is 0 inside the box, y~ = lam * y_i + (1 - lam) * y_j.
The box has sides sqrt(1 - lam) * H and sqrt(1 - lam) * W (so its area is (1 - lam) of the image) and a
centre drawn uniformly over the image; it is clipped at the border, so the pasted area can be smaller than
asked, and lam is recomputed as 1 - (box area) / (H * W) (the paper's official code and fastai's `CutMix`
both do this). As in the paper's algorithm and in fastai, one lam and one box serve the whole batch.

Randomness is passed in: a `torch.Generator` for the draws, and `lam`, `perm`, `box` for the mixing, so
the mixing functions are deterministic.

How `sample_lam` draws Beta(alpha, alpha) from a generator: `torch.distributions.Beta` (and the
`torch._standard_gamma` it relies on) only draw from the global generator. We use the identity
Beta(a, a) = G1 / (G1 + G2) for independent G1, G2 ~ Gamma(a, 1), and draw the Gammas with the
rejection method of Marsaglia and Tsang (2000, "A simple method for generating gamma variables", ACM
TOMS 26(3)), whose normal and uniform draws take a generator; for a < 1 it boosts the shape,
Gamma(a) = Gamma(a + 1) * U^(1/a) (same paper, section 6). Everything is done on logarithms,
lam = sigmoid(log G1 - log G2), because for small a the factor U^(1/a) underflows to 0 in floating point.
The result depends on the generator's state alone, never on the global generator.
"""
import math
from numbers import Integral, Real

import torch
import torch.nn.functional as F

__all__ = ["sample_lam", "mixup", "mixup_loss", "rand_box", "cutmix"]

REDUCTIONS = ("mean", "sum", "none")


# ----------------------------------------------------------------------------------------- checks
def _check_generator(generator) -> torch.Generator:
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}; "
                        f"make one with torch.Generator().manual_seed(seed)")
    return generator


def _check_int(value, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return int(value)


def _check_scalar_lam(lam) -> float:
    if isinstance(lam, torch.Tensor):
        if lam.numel() != 1 or not lam.is_floating_point():
            raise TypeError(f"lam must be a number or a one-element floating tensor, got a {lam.dtype} tensor "
                            f"of shape {list(lam.shape)}")
        lam = float(lam)
    elif isinstance(lam, bool) or not isinstance(lam, Real):
        raise TypeError(f"lam must be a number in [0, 1], got {type(lam).__name__}")
    lam = float(lam)
    if not (math.isfinite(lam) and 0.0 <= lam <= 1.0):
        raise ValueError(f"lam must be in [0, 1], got {lam}")
    return lam


def _check_images(x, min_ndim: int, layout: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got dtype {x.dtype}; convert images with x.float() / 255")
    if x.ndim < min_ndim:
        raise ValueError(f"x must have shape {layout}, got shape {list(x.shape)}")


def _check_lam_per_sample(lam, n: int, like: torch.Tensor) -> torch.Tensor:
    """lam as a tensor [n] with `like`'s dtype and device; a number means the same lam for every sample."""
    if isinstance(lam, torch.Tensor):
        if not lam.is_floating_point():
            raise TypeError(f"lam must be a floating-point tensor, got dtype {lam.dtype}")
        if lam.ndim != 1 or lam.shape[0] != n:
            raise ValueError(f"lam must have shape [N] = [{n}] (one value per sample), got shape {list(lam.shape)}")
        lam = lam.to(device=like.device, dtype=like.dtype)
    else:
        lam = torch.full((n,), _check_scalar_lam(lam), dtype=like.dtype, device=like.device)
    if n:
        low, high = torch.aminmax(lam)
        low, high = float(low), float(high)
        if not (0.0 <= low and high <= 1.0):     # also false for nan
            raise ValueError(f"every lam must be in [0, 1], got values from {low} to {high}")
    return lam


def _check_perm(perm, n: int, device: torch.device) -> torch.Tensor:
    if not isinstance(perm, torch.Tensor):
        raise TypeError(f"perm must be a torch.Tensor of indices (e.g. torch.randperm(N)), got {type(perm).__name__}")
    if perm.is_floating_point() or perm.is_complex() or perm.dtype == torch.bool:
        raise TypeError(f"perm must hold integer indices, got dtype {perm.dtype}")
    if perm.ndim != 1 or perm.shape[0] != n:
        raise ValueError(f"perm must have shape [N] = [{n}] (a permutation of the batch), got shape {list(perm.shape)}")
    perm = perm.to(device=device, dtype=torch.long)
    if n and not torch.equal(torch.sort(perm).values, torch.arange(n, device=device)):
        raise ValueError(f"perm must be a permutation of 0..{n - 1} (each index once), got {perm.tolist()[:8]}"
                         f"{' ...' if n > 8 else ''}")
    return perm


def _one_hot_targets(y, n: int, n_classes, like: torch.Tensor) -> torch.Tensor:
    """Targets [N, K] as a floating tensor: one-hot rows for class indices, float targets as given."""
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"y must be a torch.Tensor, got {type(y).__name__}")
    if y.device != like.device:
        raise ValueError(f"y is on {y.device} but x is on {like.device}")
    if y.is_floating_point():
        if y.ndim != 2 or y.shape[0] != n:
            raise ValueError(f"float targets y must have shape [N, K] with N = {n}, got shape {list(y.shape)}")
        if n_classes is not None and _check_int(n_classes, "n_classes", 1) != y.shape[1]:
            raise ValueError(f"n_classes is {n_classes} but y has {y.shape[1]} columns")
        return y
    if y.is_complex() or y.dtype == torch.bool:
        raise TypeError(f"y must hold class indices (integers) or float targets, got dtype {y.dtype}")
    if n_classes is None:
        raise ValueError("y holds class indices: pass n_classes so they can be turned into one-hot targets")
    n_classes = _check_int(n_classes, "n_classes", 1)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"class indices y must have shape [N] = [{n}], got shape {list(y.shape)}")
    if n:
        low, high = torch.aminmax(y)
        if int(low) < 0 or int(high) >= n_classes:
            bad = int(low) if int(low) < 0 else int(high)
            raise ValueError(f"class index {bad} is out of range for {n_classes} classes (valid: 0 to {n_classes - 1})")
    return F.one_hot(y.long(), n_classes).to(like.dtype)


# ----------------------------------------------------------------------------------------- Mixup
def _log_gamma(shape: float, n: int, generator: torch.Generator) -> torch.Tensor:
    """log of n independent Gamma(shape, 1) draws, float64, on the generator's device (Marsaglia-Tsang)."""
    device = generator.device
    boosted = shape < 1.0
    a = shape + 1.0 if boosted else shape
    d = a - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    parts, missing = [torch.empty(0, dtype=torch.float64, device=device)], n
    while missing:
        # Draw a few more candidates than needed (the acceptance rate is above 95 % for a >= 1), keep the
        # accepted ones in order: usually one round, and the result depends on the generator alone.
        m = missing + missing // 8 + 16
        z = torch.randn(m, generator=generator, dtype=torch.float64, device=device)
        u = torch.rand(m, generator=generator, dtype=torch.float64, device=device)
        v = (1.0 + c * z) ** 3
        log_v = torch.log(v.clamp(min=1e-300))
        accept = (v > 0) & (torch.log(u) < 0.5 * z * z + d - d * v + d * log_v)
        kept = log_v[accept][:missing]
        parts.append(kept)
        missing -= kept.numel()
    out = math.log(d) + (torch.cat(parts) if len(parts) > 2 else parts[-1])
    if boosted:   # Gamma(shape) = Gamma(shape + 1) * U^(1/shape), with U in (0, 1]
        u = 1.0 - torch.rand(n, generator=generator, dtype=torch.float64, device=device)
        out = out + torch.log(u) / shape
    return out


def sample_lam(alpha: float, n: int, generator: torch.Generator, *, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """n independent draws of lam ~ Beta(alpha, alpha) (Zhang et al., 2018, eq. 1), one per sample.

    Reproducible from `generator` alone: the global torch generator is neither used nor changed.
    Unlike fastai's `MixUp`, the draws are not folded to max(lam, 1 - lam).

    Args:
        alpha: the Beta parameter, > 0 (fastai's `MixUp` default is 0.4; small alpha puts most draws
            near 0 and 1, alpha = 1 is uniform).
        n: number of draws, >= 0.
        generator: the torch.Generator to draw from; the result lies on its device.
        dtype: floating dtype of the result.

    Returns:
        A new tensor [n] of `dtype` with values in [0, 1].
    """
    if isinstance(alpha, bool) or not isinstance(alpha, Real):
        raise TypeError(f"alpha must be a positive number, got {type(alpha).__name__}")
    alpha = float(alpha)
    if not (math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha must be a positive finite number, got {alpha}")
    n = _check_int(n, "n", 0)
    _check_generator(generator)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    log_g = _log_gamma(alpha, 2 * n, generator)
    # G1 / (G1 + G2) = sigmoid(log G1 - log G2): finite even when both Gammas underflow.
    return torch.sigmoid(log_g[:n] - log_g[n:]).to(dtype)


def mixup(x: torch.Tensor, y: torch.Tensor, lam, perm: torch.Tensor, n_classes: int | None = None):
    """Mix every sample with its partner perm[i]: lam_i * x_i + (1 - lam_i) * x_perm[i] (Zhang et al., 2018, eq. 1).

    Args:
        x: floating tensor [N, ...] (images [N, C, H, W]); lam_i is broadcast over all but dimension 0.
        y: class indices [N] (integers, then `n_classes` is required) or float targets [N, K]
            (one-hot or already smoothed).
        lam: floating tensor [N] with values in [0, 1] (one per sample), or a number for the whole batch.
        perm: integer tensor [N], a permutation of 0..N-1: the partner of sample i is perm[i].
        n_classes: K, needed when y holds class indices.

    Returns:
        (mixed images, mixed targets): new tensors on x's device; images in x's dtype [N, ...], targets
        [N, K] in y's dtype when y is floating, else in x's dtype. The inputs are not changed.
    """
    _check_images(x, 1, "[N, ...]")
    n = x.shape[0]
    targets = _one_hot_targets(y, n, n_classes, x)
    perm = _check_perm(perm, n, x.device)
    lam = _check_lam_per_sample(lam, n, x)
    # torch.lerp(a, b, w) = a + w * (b - a): lam * x_i + (1 - lam) * x_perm[i] in one fused operation,
    # the same operation as fastai's MixUp, so both give the same bits.
    x_mixed = torch.lerp(x[perm], x, lam.view(n, *([1] * (x.ndim - 1))))
    lam_y = lam.to(targets.dtype).view(n, 1)
    y_mixed = torch.lerp(targets[perm], targets, lam_y)
    return x_mixed, y_mixed


def mixup_loss(logits: torch.Tensor, y: torch.Tensor, lam, perm: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """The Mixup loss as fastai computes it for class indices: lam_i * CE(z_i, y_i) + (1 - lam_i) * CE(z_i, y_perm[i]).

    Cross-entropy is linear in its target, so this equals the cross-entropy of the logits against the
    mixed one-hot targets of `mixup(x, y, lam, perm, K)`, without building them.

    Args:
        logits: floating tensor [N, K], the model's output on the mixed images.
        y: class indices [N] of the *unmixed* batch.
        lam: floating tensor [N] in [0, 1] (or a number), as given to `mixup`.
        perm: the permutation given to `mixup`.
        reduction: "mean", "sum" or "none" (one loss per sample).

    Returns:
        The loss in logits' dtype and device; a scalar unless reduction is "none".
    """
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"logits must be a torch.Tensor, got {type(logits).__name__}")
    if not logits.is_floating_point():
        raise TypeError(f"logits must be a floating-point tensor, got dtype {logits.dtype}")
    if logits.ndim != 2:
        raise ValueError(f"logits must have shape [N, K], got shape {list(logits.shape)}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    n, k = logits.shape
    if isinstance(y, torch.Tensor) and y.is_floating_point():
        raise TypeError(f"y must hold class indices (integers), got dtype {y.dtype}")
    _one_hot_targets(y, n, k, logits)        # validates y (shape, range, device)
    perm = _check_perm(perm, n, logits.device)
    lam = _check_lam_per_sample(lam, n, logits)
    log_p = F.log_softmax(logits, dim=1)
    y = y.long()
    own = -log_p.gather(1, y.view(n, 1)).view(n)
    partner = -log_p.gather(1, y[perm].view(n, 1)).view(n)
    loss = torch.lerp(partner, own, lam)
    if reduction == "mean":
        return loss.mean()
    return loss.sum() if reduction == "sum" else loss


# ---------------------------------------------------------------------------------------- CutMix
def rand_box(h: int, w: int, lam, generator: torch.Generator) -> tuple[int, int, int, int]:
    """A CutMix box (Yun et al., 2019, section 3.1): sides sqrt(1 - lam) * (h, w), centre uniform, clipped.

    The unclipped box is round(h * sqrt(1 - lam)) rows by round(w * sqrt(1 - lam)) columns around a
    centre (cy, cx) drawn uniformly from the pixel grid (rows, then columns, from `generator`); the
    part that falls outside the image is cut off.

    Args:
        h: image height, >= 1.
        w: image width, >= 1.
        lam: a number in [0, 1]; the box covers about (1 - lam) of the image before clipping.
        generator: the torch.Generator to draw the centre from.

    Returns:
        (top, left, bottom, right) as Python ints, bottom and right exclusive:
        0 <= top <= bottom <= h and 0 <= left <= right <= w; the box is x[..., top:bottom, left:right].
    """
    h, w = _check_int(h, "h", 1), _check_int(w, "w", 1)
    lam = _check_scalar_lam(lam)
    _check_generator(generator)
    scale = math.sqrt(1.0 - lam)
    cut_h, cut_w = round(h * scale), round(w * scale)
    cy = int(torch.randint(0, h, (1,), generator=generator, device=generator.device))
    cx = int(torch.randint(0, w, (1,), generator=generator, device=generator.device))
    top, left = cy - cut_h // 2, cx - cut_w // 2
    return (min(max(top, 0), h), min(max(left, 0), w), min(max(top + cut_h, 0), h), min(max(left + cut_w, 0), w))


def _check_box(box, h: int, w: int) -> tuple[int, int, int, int]:
    if not isinstance(box, (tuple, list)) or len(box) != 4:
        raise TypeError(f"box must be a tuple (top, left, bottom, right), got {box!r}")
    values = []
    for name, v in zip(("top", "left", "bottom", "right"), box):
        if isinstance(v, torch.Tensor) and v.numel() == 1 and not v.is_floating_point():
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, Integral):
            raise TypeError(f"box {name} must be an int, got {type(v).__name__}")
        values.append(int(v))
    top, left, bottom, right = values
    if not (0 <= top <= bottom <= h and 0 <= left <= right <= w):
        raise ValueError(f"box (top, left, bottom, right) = {tuple(values)} does not lie in a {h} x {w} image "
                         f"(need 0 <= top <= bottom <= {h} and 0 <= left <= right <= {w})")
    return top, left, bottom, right


def cutmix(x: torch.Tensor, y: torch.Tensor, lam, perm: torch.Tensor, box, n_classes: int | None = None):
    """Paste the box of each partner image perm[i] into image i; mix the targets by the area kept (Yun et al., 2019, eq. 1-2).

    Args:
        x: floating tensor [N, ..., H, W] (images [N, C, H, W]).
        y: class indices [N] (then `n_classes` is required) or float targets [N, K].
        lam: the number in [0, 1] that `box` was drawn with (`rand_box(H, W, lam, g)`). It is only
            checked: the targets use lam' = 1 - (box area) / (H * W), which differs from lam when the
            box was clipped at the border.
        perm: integer tensor [N], a permutation of 0..N-1.
        box: (top, left, bottom, right), bottom and right exclusive, inside the image.
        n_classes: K, needed when y holds class indices.

    Returns:
        (mixed images, mixed targets) as new tensors on x's device: images in x's dtype, targets
        lam' * y_i + (1 - lam') * y_perm[i] as in `mixup`. The inputs are not changed.
    """
    _check_images(x, 3, "[N, ..., H, W]")
    n, height, width = x.shape[0], x.shape[-2], x.shape[-1]
    targets = _one_hot_targets(y, n, n_classes, x)
    perm = _check_perm(perm, n, x.device)
    _check_scalar_lam(lam)
    top, left, bottom, right = _check_box(box, height, width)
    x_mixed = x.clone()
    x_mixed[..., top:bottom, left:right] = x[perm, ..., top:bottom, left:right]
    kept = 1.0 - (bottom - top) * (right - left) / (height * width)
    y_mixed = torch.lerp(targets[perm], targets, kept)
    return x_mixed, y_mixed

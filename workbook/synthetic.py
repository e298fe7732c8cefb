"""The embedded synthetic data set: ``imagenette-synthetic-<variant>``, generated on this machine.

It is made from a seed (no download, same bytes on every run) and is *not* Imagenette: every
image is a computer-drawn shape on a cluttered, colour-cast background.  It uses the imagenette2
folder layout (``train/<class>/*.JPEG``, ``val/<class>/*.JPEG``) so that every DataBlock line
is the one you would write for the real data set.  Its ten classes are synthetic shapes; the
folder names copy the ``nXXXXXXXX`` style of WordNet ids but say what they hold:

======================  =====================================================================
``n00_disc``            filled disc
``n01_disc_striped``    the same disc filled with fine stripes (needs resolution to tell apart)
``n02_ring``            annulus
``n03_square``          filled square
``n04_square_dotted``   the same square filled with a fine dot grid (needs resolution)
``n05_triangle``        equilateral triangle
``n06_cross``           plus sign
``n07_crescent``        disc with a bite taken out
``n08_bar``             rectangle three times as long as it is wide
``n09_star``            five-pointed rounded star
======================  =====================================================================

What makes the chapter's phenomena observable:

- image sides drawn independently from 60-140 px (varied size *and* aspect ratio);
- objects at random rotation, scale (radius 18-32 % of the short side) and position; a quarter
  of them straddle an edge (up to a third cut off), so a crop -- the centre crop of a non-square
  image, or a random training crop -- can lose them;
- the class is the shape (and texture); object colours come in eight noisy families around the
  cast, a cue but not the answer: the two classes of each texture pair share a family;
- stripes and dots with a period of 3.2-4 % of the short side: 2-2.6 px at 64 px, where they
  are still visible, about 1.2 px at 32 px, where resizing blurs or aliases them away (at 32 px the
  small model confuses the texture pairs far more often than at 64 px);
- a strong colour cast: channel means about (0.60, 0.36, 0.21) and standard deviations about
  0.08, far from 0/1 and from ImageNet's statistics;
- background gradients, pixel noise and small distractor blobs and lines;
- optional label noise: ``label_noise=0.2`` moves 20 % of the *training* images (chosen from
  the seed) into a wrong class folder; validation labels stay clean.  ``labels.csv`` in the
  data set folder lists every file with its folder label and its true label.

Variants (images per class, train/val): ``"tiny"`` 8/4 (tests), ``"small"`` 150/50 (default:
1,500 train + 500 val), ``"large"`` 700/100 (7,000 + 1,000; shows how a bigger set slows
iteration).  Image ``k`` of a class is the same in every variant, so "small" is a subset of
"large".

Students never need this module: :func:`workbook.data.get_imagenette` calls
:func:`make_synthetic_imagenette`, which builds the set once under ``cache_dir()/"data"``
(:mod:`workbook.cache`); ``python -m workbook.synthetic`` generates it ahead of time (``make data``;
it imports no fastai, so it starts in a fraction of a second).
Samples of real Imagenette (:func:`workbook.data.make_subset`) reuse its variants and label noise.
"""
from __future__ import annotations

import csv
import hashlib
import math
import os
from pathlib import Path

import numpy as np
from PIL import Image

from workbook.cache import build_once, cache_dir, read_marker

__all__ = [
    "CLASS_NAMES", "VARIANTS", "GENERATOR_VERSION", "EDGE_FRACTION", "render_synthetic_image", "synthetic_name",
    "make_synthetic_imagenette", "check_variant_args", "name_suffix", "noisy_labels", "main",
]

# The ten classes, in the order of fastai's vocabulary (sorted folder names).
CLASS_NAMES = (
    "n00_disc", "n01_disc_striped", "n02_ring", "n03_square", "n04_square_dotted",
    "n05_triangle", "n06_cross", "n07_crescent", "n08_bar", "n09_star",
)
# (train images per class, val images per class)
VARIANTS = {"tiny": (8, 4), "small": (150, 50), "large": (700, 100)}

# Bump when the drawing code changes: cached folders made by an older generator are regenerated.
GENERATOR_VERSION = 2
_IMAGE_SIDE_RANGE = (60, 140)
_CAST = np.array([0.60, 0.36, 0.21], dtype=np.float32)   # mean colour of every image
_SPLIT_CODES = {"train": 0, "val": 1}
_JPEG_QUALITY = 90
# Object colours: eight families (cast +/- 0.15 per channel); the classes of each texture pair share
# one, so colour is a cue but only fine detail separates disc from striped disc, square from dotted.
_COLOUR_FAMILIES = 0.15 * np.array([[r, g, b] for r in (1, -1) for g in (1, -1) for b in (1, -1)],
                                   dtype=np.float32)
_CLASS_COLOUR_FAMILY = (0, 0, 1, 2, 2, 3, 4, 5, 6, 7)
_COLOUR_JITTER = 0.11
EDGE_FRACTION = 0.25          # share of objects placed across an image edge


# --------------------------------------------------------------------------------------------
# Synthetic image rendering (pure functions of a numpy Generator)
# --------------------------------------------------------------------------------------------
def _soft(sdf: np.ndarray) -> np.ndarray:
    """Coverage in [0, 1] of a shape given its signed distance in pixels (1 px anti-aliased edge)."""
    return np.clip(0.5 - sdf, 0.0, 1.0)


def _shape_sdf(class_index: int, u: np.ndarray, v: np.ndarray, s: float) -> np.ndarray:
    """Approximate signed distance (px, negative inside) of the class's shape in local coordinates.

    Args:
        class_index: index into CLASS_NAMES.
        u, v: object-centred, rotated pixel coordinates.
        s: object radius in pixels.
    """
    if class_index in (0, 1):                                     # disc (plain / striped)
        return np.hypot(u, v) - s
    if class_index == 2:                                          # ring
        return np.abs(np.hypot(u, v) - 0.75 * s) - 0.25 * s
    if class_index in (3, 4):                                     # square (plain / dotted)
        return np.maximum(np.abs(u), np.abs(v)) - 0.82 * s
    if class_index == 5:                                          # triangle, inradius 0.6 s
        angles = (math.pi / 2, math.pi / 2 + 2 * math.pi / 3, math.pi / 2 + 4 * math.pi / 3)
        planes = [u * math.cos(a) + v * math.sin(a) for a in angles]
        return np.maximum(np.maximum(planes[0], planes[1]), planes[2]) - 0.6 * s
    if class_index == 6:                                          # cross
        horizontal = np.maximum(np.abs(u) - s, np.abs(v) - 0.3 * s)
        vertical = np.maximum(np.abs(u) - 0.3 * s, np.abs(v) - s)
        return np.minimum(horizontal, vertical)
    if class_index == 7:                                          # crescent: disc minus a disc
        return np.maximum(np.hypot(u, v) - s, 0.8 * s - np.hypot(u - 0.5 * s, v))
    if class_index == 8:                                          # bar, 3:1
        return np.maximum(np.abs(u) - 1.05 * s, np.abs(v) - 0.35 * s)
    if class_index == 9:                                          # rounded five-pointed star
        radius = np.hypot(u, v)
        return radius - s * (0.65 + 0.35 * np.cos(5 * np.arctan2(v, u)))
    raise ValueError(f"class_index must be in 0..{len(CLASS_NAMES) - 1}, got {class_index}")


def _fine_texture(class_index: int, u: np.ndarray, v: np.ndarray, period: float) -> np.ndarray | None:
    """Darkening in [0, 1] of the fine texture (stripes or dots), or None for untextured classes.

    Draws no random numbers, so the same generator renders the same picture for both classes of a
    texture pair, with and without the texture.
    """
    if class_index == 1:
        # Soft-edged stripes: clipped sine, so the stripes are anti-aliased like the shape edges.
        return np.clip(0.5 + 1.5 * np.sin(2 * math.pi * u / period), 0.0, 1.0)
    if class_index == 4:
        du = np.mod(u, period) - period / 2
        dv = np.mod(v, period) - period / 2
        return _soft(np.hypot(du, dv) - 0.32 * period)
    return None


def _window(cx: float, cy: float, reach: float, height: int, width: int) -> tuple[slice, slice]:
    """Pixel rows/columns within `reach` of (cx, cy), clipped to the image."""
    y0, y1 = max(0, int(cy - reach)), min(height, int(cy + reach) + 2)
    x0, x1 = max(0, int(cx - reach)), min(width, int(cx + reach) + 2)
    return slice(y0, max(y0, y1)), slice(x0, max(x0, x1))


def _paint(img: np.ndarray, rows: slice, cols: slice, alpha: np.ndarray, colour: np.ndarray) -> None:
    """Alpha-blend `colour` (3,) or (h, w, 3) into img[rows, cols] (img is the caller's buffer)."""
    region = img[rows, cols]
    region += alpha[..., None] * (colour - region)


def _draw_clutter(img: np.ndarray, rng: np.random.Generator) -> None:
    """Small blobs and thin line segments in cast colours, drawn into img."""
    height, width, _ = img.shape
    for _ in range(int(rng.integers(4, 10))):
        colour = _CAST + rng.normal(0.0, 0.14, 3).astype(np.float32)
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        if rng.random() < 0.5:
            radius = rng.uniform(1.5, 4.5)
            rows, cols = _window(cx, cy, radius + 1, height, width)
            yy, xx = np.mgrid[rows, cols].astype(np.float32)
            alpha = _soft(np.hypot(xx - cx, yy - cy) - radius)
        else:
            length, angle = rng.uniform(8, 30), rng.uniform(0, math.pi)
            half_width = rng.uniform(0.4, 1.0)
            dx, dy = math.cos(angle), math.sin(angle)
            rows, cols = _window(cx, cy, length / 2 + 2, height, width)
            yy, xx = np.mgrid[rows, cols].astype(np.float32)
            along = (xx - cx) * dx + (yy - cy) * dy
            across = -(xx - cx) * dy + (yy - cy) * dx
            sdf = np.maximum(np.abs(across) - half_width, np.abs(along) - length / 2)
            alpha = _soft(sdf)
        _paint(img, rows, cols, alpha, colour)


def _object_centre(rng: np.random.Generator, height: int, width: int, radius: float) -> tuple[float, float]:
    """Centre of the object: a quarter straddle an edge (up to about a third cut off), the rest inside."""
    def inside(extent: int) -> float:
        return rng.uniform(radius, max(radius, extent - radius))

    if rng.random() < EDGE_FRACTION:
        from_edge = rng.uniform(0.2, 0.6) * radius      # centre this far inside the edge
        side = int(rng.integers(0, 4))
        if side == 0:
            return from_edge, inside(height)
        if side == 1:
            return width - from_edge, inside(height)
        if side == 2:
            return inside(width), from_edge
        return inside(width), height - from_edge
    return inside(width), inside(height)


def render_synthetic_image(class_index: int, rng: np.random.Generator) -> np.ndarray:
    """Draw one synthetic image of a class.

    Args:
        class_index: index into CLASS_NAMES (0..9).
        rng: the image's own numpy Generator; the image is a pure function of its state.

    Returns:
        uint8 array of shape (height, width, 3), sides in 60..140.
    """
    if not isinstance(class_index, (int, np.integer)) or not 0 <= class_index < len(CLASS_NAMES):
        raise ValueError(f"class_index must be an int in 0..{len(CLASS_NAMES) - 1}, got {class_index!r}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    height, width = (int(n) for n in rng.integers(_IMAGE_SIDE_RANGE[0], _IMAGE_SIDE_RANGE[1] + 1, 2))
    short = min(height, width)

    # Background: colour cast + linear gradient + pixel noise.
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = _CAST + rng.normal(0.0, 0.03, 3).astype(np.float32)
    gradient = rng.normal(0.0, 0.08, (2, 3)).astype(np.float32)
    img = (base + (xx / width - 0.5)[..., None] * gradient[0] + (yy / height - 0.5)[..., None] * gradient[1])
    _draw_clutter(img, rng)

    # The object: shape + texture define the class; its colour family is a noisy hint.
    radius = float(rng.uniform(0.18, 0.32) * short)
    cx, cy = _object_centre(rng, height, width, radius)
    angle = rng.uniform(0, 2 * math.pi)
    family = _COLOUR_FAMILIES[_CLASS_COLOUR_FAMILY[class_index]]
    colour = np.clip(base + family + rng.normal(0.0, _COLOUR_JITTER, 3).astype(np.float32), 0.0, 1.0)
    period = float(rng.uniform(0.032, 0.04) * short)
    rows, cols = _window(cx, cy, 1.2 * radius + 2, height, width)
    dx, dy = xx[rows, cols] - cx, yy[rows, cols] - cy
    u = dx * math.cos(angle) + dy * math.sin(angle)
    v = -dx * math.sin(angle) + dy * math.cos(angle)
    alpha = _soft(_shape_sdf(class_index, u, v, radius))
    texture = _fine_texture(class_index, u, v, period)
    fill = colour if texture is None else colour * (1.0 - 0.45 * texture[..., None])
    _paint(img, rows, cols, alpha, fill)

    img += rng.normal(0.0, 0.035, img.shape).astype(np.float32)
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# Synthetic data set on disk
# --------------------------------------------------------------------------------------------
def synthetic_name(variant: str = "small", label_noise: float = 0.0, seed: int = 0) -> str:
    """Folder name of a synthetic variant, e.g. ``imagenette-synthetic-small-noise20-seed3``.

    Args:
        variant: one of VARIANTS.
        label_noise: fraction of training images with a wrong label.
        seed: generation seed.
    """
    check_variant_args(variant, label_noise, seed)
    return f"imagenette-synthetic-{variant}{name_suffix(label_noise, seed)}"


def name_suffix(label_noise: float, seed: int) -> str:
    """``-noise20-seed3``: the parts of a folder name that record label noise and a non-zero seed."""
    return (f"-noise{round(label_noise * 100):02d}" if label_noise else "") + (f"-seed{seed}" if seed else "")


def check_variant_args(variant: str, label_noise: float, seed: int, variants=VARIANTS) -> None:
    """Raise a clear error unless `variant` is one of `variants`, `label_noise` a whole percentage in
    [0, 1) and `seed` an int >= 0 (the parameters of the embedded set and of samples of real data)."""
    if variant not in variants:
        raise ValueError(f"variant must be one of {list(variants)}, got {variant!r}")
    if isinstance(label_noise, bool) or not isinstance(label_noise, (int, float)):
        raise TypeError(f"label_noise must be a number, got {type(label_noise).__name__}")
    if not 0.0 <= label_noise < 1.0:
        raise ValueError(f"label_noise must be in [0, 1), got {label_noise}")
    if abs(label_noise * 100 - round(label_noise * 100)) > 1e-9:
        raise ValueError(f"label_noise must be a whole percentage (e.g. 0.2), got {label_noise}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")


def _file_stem(seed: int, split: str, class_index: int, index: int) -> str:
    """Neutral, stable file name: it must not reveal the true class once label noise moves a file."""
    digest = hashlib.sha1(f"{seed}/{split}/{class_index}/{index}".encode()).hexdigest()[:12]
    return f"synthetic_{digest}"


def noisy_labels(class_counts: list[int], label_noise: float, seed: int) -> dict[tuple[int, int], int]:
    """{(true class, index): wrong class} for the training images that get a wrong folder.

    Args:
        class_counts: training images per class, in class order (image ``index`` of class ``c`` is
            number ``sum(class_counts[:c]) + index`` of the whole set).
        label_noise: fraction of all training images to mislabel.
        seed: the draw's seed.
    """
    n_classes = len(class_counts)
    starts = np.cumsum([0, *class_counts])
    n_noisy = round(label_noise * int(starts[-1]))
    if n_noisy == 0:
        return {}
    rng = np.random.default_rng([seed, 7919])                   # stream used only for label noise
    chosen = rng.choice(int(starts[-1]), size=n_noisy, replace=False)
    shifts = rng.integers(1, n_classes, size=n_noisy)           # 1..n_classes-1: never the true class
    noisy = {}
    for flat_index, shift in zip(chosen.tolist(), shifts.tolist()):
        true_class = int(np.searchsorted(starts, flat_index, side="right")) - 1
        noisy[(true_class, flat_index - int(starts[true_class]))] = (true_class + shift) % n_classes
    return noisy


def _write_synthetic(root: Path, variant: str, label_noise: float, seed: int) -> dict:
    """Generate every image of a variant into `root` (an empty folder). Returns the marker dict."""
    n_train, n_val = VARIANTS[variant]
    noisy = noisy_labels([n_train] * len(CLASS_NAMES), label_noise, seed)
    for split in _SPLIT_CODES:
        for name in CLASS_NAMES:
            (root / split / name).mkdir(parents=True)
    rows = []
    for split, per_class in (("train", n_train), ("val", n_val)):
        for class_index, true_name in enumerate(CLASS_NAMES):
            for index in range(per_class):
                rng = np.random.default_rng([seed, _SPLIT_CODES[split], class_index, index])
                pixels = render_synthetic_image(class_index, rng)
                folder_index = noisy.get((class_index, index), class_index) if split == "train" else class_index
                file_name = f"{_file_stem(seed, split, class_index, index)}.JPEG"
                relative = Path(split) / CLASS_NAMES[folder_index] / file_name
                Image.fromarray(pixels).save(root / relative, format="JPEG", quality=_JPEG_QUALITY)
                rows.append((relative.as_posix(), CLASS_NAMES[folder_index], true_name))
    with open(root / "labels.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "label", "true_label"])
        writer.writerows(sorted(rows))
    (root / "README.txt").write_text(
        "SYNTHETIC data set -- not Imagenette.\n"
        "Computer-drawn shapes on a cluttered, colour-cast background, in the imagenette2 folder layout,\n"
        # Part of the generated bytes (edit it and the data set changes): names the function where
        # students import it.
        "generated by workbook.data.make_synthetic_imagenette "
        f"(variant={variant!r}, label_noise={label_noise}, seed={seed}).\n"
        "labels.csv: every file, its folder label and its true label (they differ only with label noise).\n")
    return {"generator_version": GENERATOR_VERSION, "variant": variant, "label_noise": label_noise,
            "seed": seed, "n_train": n_train * len(CLASS_NAMES), "n_val": n_val * len(CLASS_NAMES),
            "n_noisy": len(noisy)}


def make_synthetic_imagenette(dest: str | os.PathLike | None = None, *, variant: str = "small",
                              label_noise: float = 0.0, seed: int = 0) -> Path:
    """Generate the synthetic data set (once) and return its folder.

    The folder is ``dest/<synthetic_name(...)>``, built atomically (see :func:`workbook.cache.build_once`): a folder
    without a matching marker (half-written, or from an older generator) is regenerated.

    Args:
        dest: parent folder; default ``cache_dir()/"data"``.
        variant: "tiny", "small" (default) or "large" (see VARIANTS).
        label_noise: fraction in [0, 1) of training images moved to a wrong class folder,
            a whole percentage (0.2, not 0.123).  Validation stays clean.
        seed: generation seed; the same seed gives byte-identical files.

    Returns:
        The data set folder, holding ``train/`` and ``val/``.
    """
    check_variant_args(variant, label_noise, seed)
    label_noise = float(label_noise)
    seed = int(seed)
    parent = Path(dest).expanduser() if dest is not None else cache_dir() / "data"
    params = {"generator_version": GENERATOR_VERSION, "variant": variant, "label_noise": label_noise, "seed": seed}
    return build_once(parent / synthetic_name(variant, label_noise, seed), params,
                      lambda folder: _write_synthetic(folder, variant, label_noise, seed))


def main(argv: list[str] | None = None) -> None:
    """``python -m workbook.synthetic [--variant V] [--label-noise F] [--seed N]``: generate and print the path."""
    import argparse

    parser = argparse.ArgumentParser(description="Generate the embedded synthetic Imagenette-layout data set.")
    parser.add_argument("--variant", default="small", choices=sorted(VARIANTS))
    parser.add_argument("--label-noise", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    root = make_synthetic_imagenette(variant=args.variant, label_noise=args.label_noise, seed=args.seed)
    marker = read_marker(root) or {}
    print(f"{root}  ({marker.get('n_train')} train + {marker.get('n_val')} val images, synthetic)")


if __name__ == "__main__":
    main()

"""Data sets and DataLoaders for the Sizing & TTA workbook.

Two sources sit behind one function, :func:`get_imagenette`:

* **The embedded synthetic set (default)** -- ``imagenette-synthetic-<variant>``, generated on
  this machine from a seed (no download, same bytes on every run).  It is *not* Imagenette: every
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

* **Real Imagenette** -- names ``"160"``, ``"320"``, ``"full"`` download with fastai's
  ``untar_data(URLs.IMAGENETTE_160 / _320 / URLs.IMAGENETTE)`` into ``$FASTAI_HOME``.  With the
  environment variable ``IMAGENETTE_PATH`` set to a local copy (the folder holding ``train/`` and
  ``val/``), that copy is used instead and nothing is downloaded.  Offline, the call fails within a
  few seconds and says how to use the embedded set or a local copy.  The variants and label noise
  of the embedded set are seeded samples of it, folders of symbolic links (:func:`make_subset`).

The environment variable ``WORKBOOK_DATA`` (:func:`data_name`) names the data set that
``get_imagenette()`` returns when called without a name: every notebook and ``workbook.train``
follow it.  :func:`class_names` reads the classes' readable names from the folders (Imagenette's
WordNet ids become words); :func:`describe_data` says in one line what a data folder holds.

Images are opened by :class:`RGBImage` (used by :func:`get_dls`): grayscale, CMYK, palette or
alpha images are converted to RGB; a truncated or unreadable file raises
:class:`CorruptImageError`, which names the file and says how to fix it (delete or replace it;
:func:`find_corrupt_images` lists them all).  We raise instead of skipping: skipping inside a
DataLoader silently changes the data set and its batch sizes.

Generated data lives under ``cache_dir()/data`` (``$WORKBOOK_CACHE`` or ``<repo>/.cache``).
"""
from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import random
import shutil
import socket
import tempfile
import threading
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
from fastai.data.block import CategoryBlock, DataBlock
from fastai.data.external import URLs, fastai_path, untar_data
from fastai.data.transforms import GrandparentSplitter, Normalize, get_image_files, parent_label
from fastai.vision.augment import Resize, aug_transforms
from fastai.vision.core import PILImage
from fastai.vision.data import ImageBlock
from fastcore.foundation import L
from PIL import Image

__all__ = [
    "CLASS_NAMES", "VARIANTS", "IMAGENET_STATS", "REAL_IMAGENETTE_URLS", "CorruptImageError", "RGBImage",
    "DATA_NAMES", "DATA_ENV", "IMAGENETTE_CLASS_NAMES", "data_name", "make_subset", "class_folders", "class_names",
    "readable_class_name", "describe_data",
    "cache_dir", "synthetic_name", "make_synthetic_imagenette", "get_imagenette", "open_rgb",
    "find_corrupt_images", "sorted_image_files", "image_folder_stats", "get_dls", "seed_dataloaders",
    "render_synthetic_image", "main",
]

CLASS_NAMES = (
    "n00_disc", "n01_disc_striped", "n02_ring", "n03_square", "n04_square_dotted",
    "n05_triangle", "n06_cross", "n07_crescent", "n08_bar", "n09_star",
)
# (train images per class, val images per class)
VARIANTS = {"tiny": (8, 4), "small": (150, 50), "large": (700, 100)}
SUBSET_VARIANTS = (*VARIANTS, "all")     # samples of real Imagenette (make_subset): the same counts, or all
IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
REAL_IMAGENETTE_URLS = {"160": URLs.IMAGENETTE_160, "320": URLs.IMAGENETTE_320, "full": URLs.IMAGENETTE}
SYNTHETIC_NAMES = {"synthetic": "small", "synthetic-small": "small", "synthetic-large": "large",
                   "synthetic-tiny": "tiny"}
DATA_NAMES = (*SYNTHETIC_NAMES, *REAL_IMAGENETTE_URLS)      # the values WORKBOOK_DATA accepts
DATA_ENV = "WORKBOOK_DATA"
# Imagenette's WordNet ids and their words (the class list of https://github.com/fastai/imagenette).
IMAGENETTE_CLASS_NAMES = {
    "n01440764": "tench", "n02102040": "English springer", "n02979186": "cassette player",
    "n03000684": "chain saw", "n03028079": "church", "n03394916": "French horn", "n03417042": "garbage truck",
    "n03425413": "gas pump", "n03445777": "golf ball", "n03888605": "parachute",
}

# Bump when the drawing code changes: cached folders made by an older generator are regenerated.
GENERATOR_VERSION = 2
_MARKER = ".generated.json"
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
_CONNECT_TIMEOUT_S = 3.0


# --------------------------------------------------------------------------------------------
# Cache location
# --------------------------------------------------------------------------------------------
def cache_dir() -> Path:
    """Folder for generated data and learner files.

    Returns:
        ``$WORKBOOK_CACHE`` when that environment variable is set and non-empty, else
        ``<repo root>/.cache``.  The folder is not created here.
    """
    override = os.environ.get("WORKBOOK_CACHE", "").strip()
    if override:
        return Path(override).expanduser().resolve()
    return Path(__file__).resolve().parents[1] / ".cache"


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
    _check_synthetic_args(variant, label_noise, seed)
    return f"imagenette-synthetic-{variant}{_name_suffix(label_noise, seed)}"


def _name_suffix(label_noise: float, seed: int) -> str:
    """``-noise20-seed3``: the parts of a folder name that record label noise and a non-zero seed."""
    return (f"-noise{round(label_noise * 100):02d}" if label_noise else "") + (f"-seed{seed}" if seed else "")


def _check_synthetic_args(variant: str, label_noise: float, seed: int, variants=VARIANTS) -> None:
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


def _noisy_labels(class_counts: list[int], label_noise: float, seed: int) -> dict[tuple[int, int], int]:
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
    noisy = _noisy_labels([n_train] * len(CLASS_NAMES), label_noise, seed)
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
        "generated by workbook.data.make_synthetic_imagenette "
        f"(variant={variant!r}, label_noise={label_noise}, seed={seed}).\n"
        "labels.csv: every file, its folder label and its true label (they differ only with label noise).\n")
    return {"generator_version": GENERATOR_VERSION, "variant": variant, "label_noise": label_noise,
            "seed": seed, "n_train": n_train * len(CLASS_NAMES), "n_val": n_val * len(CLASS_NAMES),
            "n_noisy": len(noisy)}


def _read_marker(root: Path) -> dict | None:
    try:
        return json.loads((root / _MARKER).read_text())
    except (OSError, ValueError):
        return None


def _marker_matches(root: Path, params: dict) -> bool:
    """Whether `root` is complete and was built with `params` (every key equal in its marker)."""
    marker = _read_marker(root)
    return marker is not None and all(marker.get(key) == value for key, value in params.items())


def _build_once(root: Path, params: dict, write) -> Path:
    """Build the folder `root` once with ``write(empty folder) -> marker dict``; reuse a complete one.

    The folder is written into a temporary sibling and renamed into place only when complete, with a
    marker file recording `params` (and what `write` returns); a folder without a matching marker
    (half-written, or built with other parameters) is rebuilt.  Concurrent callers never see a
    half-written folder.
    """
    if _marker_matches(root, params):
        return root
    parent = root.parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.partial-", dir=parent))
    staging.chmod(0o755)        # mkdtemp makes it owner-only; the data set must be readable by all
    try:
        marker = {**write(staging), **params}
        (staging / _MARKER).write_text(json.dumps(marker, indent=1))   # written last: means complete
        if root.exists():
            if _marker_matches(root, params):                            # another process finished first
                return root
            stale = Path(tempfile.mkdtemp(prefix=f".{root.name}.stale-", dir=parent))
            try:
                os.replace(root, stale / "old")
            except FileNotFoundError:                                     # another process moved it
                pass
            shutil.rmtree(stale, ignore_errors=True)
        try:
            os.replace(staging, root)
        except OSError:
            if not _marker_matches(root, params):                        # lost a race to a complete copy
                raise
        return root
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def make_synthetic_imagenette(dest: str | os.PathLike | None = None, *, variant: str = "small",
                              label_noise: float = 0.0, seed: int = 0) -> Path:
    """Generate the synthetic data set (once) and return its folder.

    The folder is ``dest/<synthetic_name(...)>``, built atomically (see _build_once): a folder
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
    _check_synthetic_args(variant, label_noise, seed)
    label_noise = float(label_noise)
    seed = int(seed)
    parent = Path(dest).expanduser() if dest is not None else cache_dir() / "data"
    params = {"generator_version": GENERATOR_VERSION, "variant": variant, "label_noise": label_noise, "seed": seed}
    return _build_once(parent / synthetic_name(variant, label_noise, seed), params,
                       lambda folder: _write_synthetic(folder, variant, label_noise, seed))


# --------------------------------------------------------------------------------------------
# Real Imagenette
# --------------------------------------------------------------------------------------------
def _check_imagenette_folder(path: Path, origin: str) -> Path:
    missing = [name for name in ("train", "val") if not (path / name).is_dir()]
    if missing:
        raise FileNotFoundError(
            f"{origin} {path} is not an imagenette2 folder: it has no {' or '.join(m + '/' for m in missing)} "
            "subfolder. Point it at the extracted folder that holds train/ and val/ "
            "(e.g. .../imagenette2-160).")
    return path


def _proxy_for(scheme: str, host: str) -> tuple[str, int] | None:
    """The (host, port) of the proxy urllib would use for this URL, if any."""
    proxy = urllib.request.getproxies().get(scheme)
    if not proxy or urllib.request.proxy_bypass(host):
        return None
    parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    return (parts.hostname, parts.port or 80) if parts.hostname else None


def _unreachable_reason(url: str, timeout: float = _CONNECT_TIMEOUT_S) -> str | None:
    """None if a TCP connection to the URL's host (or its proxy) opens within `timeout`, else why not.

    The DNS look-up has no timeout of its own, so the whole attempt runs in a daemon thread.
    """
    parts = urllib.parse.urlsplit(url)
    if not parts.hostname:
        return f"the URL {url!r} has no host"
    address = _proxy_for(parts.scheme, parts.hostname) or \
        (parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    outcome: list[str | None] = []

    def attempt() -> None:
        try:
            socket.create_connection(address, timeout=timeout).close()
            outcome.append(None)
        except OSError as error:
            outcome.append(f"{type(error).__name__}: {error}")

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout + 0.5)
    return outcome[0] if outcome else f"no answer from {address[0]}:{address[1]} within {timeout:.0f} s"


def _extracted_folder(url: str) -> Path:
    """Where fastai's untar_data puts the archive's contents (mirrors fastdownload's naming)."""
    archive_name = Path(urllib.parse.urlsplit(url).path).name
    return fastai_path("data") / Path(archive_name).stem.removesuffix(".tar")


def _real_imagenette(name: str, url: str | None) -> Path:
    local = os.environ.get("IMAGENETTE_PATH", "").strip()
    if local:
        return _check_imagenette_folder(Path(local).expanduser(), "IMAGENETTE_PATH=")
    url = url or REAL_IMAGENETTE_URLS[name]
    extracted = _extracted_folder(url)
    if not extracted.exists():     # untar_data would download: fail fast and helpfully when offline
        reason = _unreachable_reason(url)
        if reason is not None:
            raise ConnectionError(
                f"Cannot download Imagenette {name!r} from {url}: {reason}. This machine seems to be "
                "offline (or the server is down).\n"
                "Either use the embedded synthetic data set, which needs no download: get_imagenette()\n"
                "or download and extract the archive on a connected machine, copy the folder here and set "
                "the environment variable IMAGENETTE_PATH to it (the folder holding train/ and val/).")
    return _check_imagenette_folder(Path(untar_data(url)), "The downloaded archive")


def _class_folders(split_folder: Path) -> list[str]:
    return sorted(entry.name for entry in split_folder.iterdir() if entry.is_dir())


def _write_subset(root: Path, source: Path, per_class: tuple[int, int] | None, label_noise: float,
                  seed: int) -> dict:
    """Fill `root` with symbolic links to a seeded sample of `source`'s images (see make_subset)."""
    classes = _class_folders(source / "train")
    if not classes:
        raise FileNotFoundError(f"{source / 'train'} has no class folders")
    missing = [name for name in classes if not (source / "val" / name).is_dir()]
    if missing:
        raise FileNotFoundError(f"{source / 'val'} lacks the class folders {missing} that train/ has")
    chosen = {}
    for split_code, split in enumerate(("train", "val")):
        chosen[split] = []
        for class_index, name in enumerate(classes):
            files = list(sorted_image_files(source / split / name))
            if per_class is not None and len(files) > per_class[split_code]:
                # The same seeded permutation for every variant, so "small" is a subset of "large".
                keep = np.random.default_rng([seed, split_code, class_index]).permutation(len(files))
                files = [files[i] for i in sorted(keep[:per_class[split_code]])]
            chosen[split].append(files)
    noisy = _noisy_labels([len(files) for files in chosen["train"]], label_noise, seed)
    rows = []
    for split, per_class_files in chosen.items():
        for class_index, files in enumerate(per_class_files):
            for index, file in enumerate(files):
                folder = classes[noisy.get((class_index, index), class_index)] if split == "train" else \
                    classes[class_index]
                link = root / split / folder / file.name
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(Path(file).resolve())
                rows.append((link.relative_to(root).as_posix(), folder, classes[class_index]))
    with open(root / "labels.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "label", "true_label"])
        writer.writerows(sorted(rows))
    return {"n_train": sum(map(len, chosen["train"])), "n_val": sum(map(len, chosen["val"])),
            "n_noisy": len(noisy)}


def make_subset(source: str | os.PathLike, dest: str | os.PathLike | None = None, *, variant: str = "small",
                label_noise: float = 0.0, seed: int = 0) -> Path:
    """An imagenette-layout folder of symbolic links to a seeded sample of `source` (built once).

    This is how real Imagenette gets the embedded set's variants and label noise: ``"small"`` keeps
    up to 150 training and 50 validation images per class (the embedded set's counts, which the
    notebooks' time budgets assume), ``"large"`` 700/100, ``"tiny"`` 8/4, ``"all"`` every image.
    The images are not copied.  With ``label_noise`` the chosen share of the training links sits in a
    wrong class folder; ``labels.csv`` lists every link with its folder label and its true label.

    Args:
        source: an imagenette-layout folder (``train/<class>/*``, ``val/<class>/*``).
        dest: parent folder of the subset; default ``cache_dir()/"data"``.
        variant: "tiny", "small", "large" or "all".
        label_noise: fraction in [0, 1) of training images moved to a wrong class, a whole percentage.
        seed: seed of the sample and of the label noise.

    Returns:
        The subset folder, ``dest/<source name>-<variant>[-noiseNN][-seedN]-<hash of the source path>``.
    """
    _check_synthetic_args(variant, label_noise, seed, variants=SUBSET_VARIANTS)
    source = _check_imagenette_folder(Path(source).expanduser().resolve(), "The data folder")
    parent = Path(dest).expanduser() if dest is not None else cache_dir() / "data"
    digest = hashlib.sha1(str(source).encode()).hexdigest()[:8]
    params = {"subset_version": 1, "source": str(source), "variant": variant, "label_noise": float(label_noise),
              "seed": int(seed)}
    per_class = None if variant == "all" else VARIANTS[variant]
    return _build_once(parent / f"{source.name}-{variant}{_name_suffix(label_noise, seed)}-{digest}", params,
                       lambda folder: _write_subset(folder, source, per_class, float(label_noise), int(seed)))


def data_name() -> str:
    """The data set every notebook and ``workbook.train`` use: ``$WORKBOOK_DATA``, default "synthetic".

    Set ``WORKBOOK_DATA=160`` (or 320, full) to switch everything to real Imagenette, downloaded by
    fastai or read from ``$IMAGENETTE_PATH``.

    Raises:
        ValueError: the variable names no data set.
    """
    name = os.environ.get(DATA_ENV, "").strip() or "synthetic"
    if name not in DATA_NAMES:
        raise ValueError(f"{DATA_ENV}={name!r} is not a data set: set it to one of {', '.join(DATA_NAMES)} "
                         f"(or unset it for the embedded synthetic set)")
    return name


def get_imagenette(name: str | None = None, *, variant: str | None = None, label_noise: float = 0.0,
                   seed: int = 0, url: str | None = None, dest: str | os.PathLike | None = None) -> Path:
    """Folder of an Imagenette-layout data set (``train/<class>/*``, ``val/<class>/*``).

    Args:
        name: "synthetic" (the embedded set), "synthetic-large", "synthetic-tiny", or real Imagenette
            "160", "320", "full"; default :func:`data_name` (``$WORKBOOK_DATA``, else "synthetic").
        variant: "tiny", "small" (default), "large"; for real Imagenette also "all".  On the embedded
            set it picks the generated variant; on real Imagenette a seeded sample with the same
            number of images per class (:func:`make_subset`), so the notebooks' budgets hold.
        label_noise: fraction of training images moved to a wrong class folder (validation stays clean).
        seed: synthetic: generation seed; real: seed of the sample and of the label noise.
        url: real names only: download from this URL instead of fastai's (tests use a local server).
        dest: parent folder of generated data and subsets (default ``cache_dir()/"data"``).

    Returns:
        The data set folder.  For real names, ``$IMAGENETTE_PATH`` wins when set; otherwise the
        archive is downloaded and extracted by fastai into ``$FASTAI_HOME/data`` (once).

    Raises:
        ValueError: unknown name or variant, or an option that does not apply to that source.
        ConnectionError: a download is needed and the server cannot be reached (within seconds).
        FileNotFoundError: IMAGENETTE_PATH (or the archive) lacks train/ or val/.
    """
    if name is None:
        name = data_name()
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    if name in SYNTHETIC_NAMES:
        if url is not None:
            raise ValueError(f"url= only applies to real Imagenette ({sorted(REAL_IMAGENETTE_URLS)}), not {name!r}")
        named = SYNTHETIC_NAMES[name]
        if variant is not None and name != "synthetic" and variant != named:
            raise ValueError(f"{name!r} is the {named!r} variant; pass name='synthetic', variant={variant!r}")
        return make_synthetic_imagenette(dest, variant=variant or named, label_noise=label_noise, seed=seed)
    if name in REAL_IMAGENETTE_URLS:
        if url is not None and not isinstance(url, str):
            raise TypeError(f"url must be a str, got {type(url).__name__}")
        variant = variant or "small"
        _check_synthetic_args(variant, label_noise, seed, variants=SUBSET_VARIANTS)   # before any download
        folder = _real_imagenette(name, url)
        if variant == "all" and not label_noise:
            return folder
        return make_subset(folder, dest, variant=variant, label_noise=label_noise, seed=seed)
    raise ValueError(f"unknown data set {name!r}; choose one of {list(DATA_NAMES)}")


def readable_class_name(folder: str) -> str:
    """A class folder's name for people: Imagenette's WordNet ids become words, "n02_ring" becomes "ring"."""
    if folder in IMAGENETTE_CLASS_NAMES:
        return IMAGENETTE_CLASS_NAMES[folder]
    if folder in CLASS_NAMES:
        return folder.split("_", 1)[1]
    return folder


def class_folders(path: str | os.PathLike) -> list[str]:
    """The class folder names under ``path/train``, sorted: the order of fastai's ``dls.vocab``."""
    return _class_folders(Path(path) / "train")


def class_names(path: str | os.PathLike) -> tuple[str, ...]:
    """Readable names of the classes of an imagenette-layout folder, in the order of ``dls.vocab``.

    Args:
        path: the data folder; its ``train/`` class folders are read (sorted, as fastai's vocabulary).
    """
    return tuple(readable_class_name(name) for name in class_folders(path))


def describe_data(path: str | os.PathLike) -> str:
    """One line saying which data `path` holds and how many images, e.g. for a results file."""
    path = Path(path)
    marker = _read_marker(path) or {}
    if "generator_version" in marker:
        what = f"embedded synthetic set (not Imagenette), variant {marker['variant']}"
    elif "source" in marker:
        what = f"{marker['variant']} subset (seed {marker['seed']}) of the Imagenette-layout folder {marker['source']}"
    else:
        counts = [len(sorted_image_files(path / split)) for split in ("train", "val")]
        marker = {"n_train": counts[0], "n_val": counts[1]}
        what = f"the Imagenette-layout folder {path}"
    line = f"{what}: {marker['n_train']:,} train / {marker['n_val']:,} val images"
    if marker.get("label_noise"):
        line += f", {round(marker['label_noise'] * 100)}% of the training labels wrong"
    return line


# --------------------------------------------------------------------------------------------
# Opening images
# --------------------------------------------------------------------------------------------
class CorruptImageError(OSError):
    """An image file that cannot be decoded (truncated, corrupt, or not an image)."""


def _load_rgb(path: str | os.PathLike) -> Image.Image:
    """Decode a whole image file and convert it to RGB, or raise CorruptImageError naming it."""
    try:
        with Image.open(path) as im:
            im.load()                     # decode everything now: truncation shows up here
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                # Flatten transparency onto white, as an image viewer shows it.
                rgba = im.convert("RGBA")
                flat = Image.new("RGB", rgba.size, (255, 255, 255))
                flat.paste(rgba, mask=rgba.getchannel("A"))
                return flat
            return im.convert("RGB")      # grayscale (L, I;16...), CMYK, palette, YCbCr -> RGB
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise                             # a path problem, not a damaged file
    except (OSError, SyntaxError, ValueError) as error:
        raise CorruptImageError(
            f"Cannot read image file {os.fspath(path)}: {error}. The file is truncated or corrupt: "
            "delete it or replace it with a good copy. To list every unreadable image of a data set, "
            "run workbook.data.find_corrupt_images(path).") from error


class RGBImage(PILImage):
    """fastai ``PILImage`` that opens files as RGB and names the file when it cannot be read.

    Use it as ``ImageBlock(cls=RGBImage)``.  Non-path inputs (arrays, tensors, bytes, PIL images)
    go to fastai's ``PILImage.create`` unchanged.
    """

    @classmethod
    def create(cls, fn, **kwargs):
        if isinstance(fn, (str, os.PathLike)) and not kwargs:
            return cls(_load_rgb(fn))
        return super().create(fn, **kwargs)


def open_rgb(path: str | os.PathLike) -> RGBImage:
    """Open an image file as an RGB fastai image.

    Args:
        path: image file.

    Returns:
        An RGBImage (a fastai PILImage).

    Raises:
        CorruptImageError: the file is truncated or not a readable image (message names the file).
        FileNotFoundError: the file does not exist.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    return RGBImage.create(path)


def sorted_image_files(path: str | os.PathLike):
    """fastai's ``get_image_files`` in sorted order.

    os.walk lists files in file-system order, which differs between machines; sorting makes the
    data set order (and so a seeded shuffle) the same everywhere.

    Args:
        path: folder to search recursively.
    """
    return L(sorted(get_image_files(path)))


def find_corrupt_images(path: str | os.PathLike) -> list[Path]:
    """Image files under `path` that cannot be fully decoded.

    Args:
        path: a folder (searched recursively for image extensions) or a single file.

    Returns:
        Sorted list of unreadable files; empty when all are fine.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    files = [path] if path.is_file() else list(sorted_image_files(path))
    corrupt = []
    for file in files:
        try:
            _load_rgb(file)
        except CorruptImageError:
            corrupt.append(Path(file))
    return corrupt


# --------------------------------------------------------------------------------------------
# Statistics and DataLoaders
# --------------------------------------------------------------------------------------------
def image_folder_stats(path: str | os.PathLike, *, max_images: int = 500, seed: int = 0
                       ) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Per-channel mean and standard deviation of the pixels of (a sample of) the images in a folder.

    Args:
        path: folder searched recursively, e.g. ``<data>/train``.
        max_images: use at most this many images, drawn with `seed` (all when fewer).
        seed: seed of the sample.

    Returns:
        (mean, std), each a 3-tuple of floats in [0, 1] units, over all pixels of the sample.
    """
    if isinstance(max_images, bool) or not isinstance(max_images, int) or max_images < 1:
        raise ValueError(f"max_images must be a positive int, got {max_images!r}")
    files = list(sorted_image_files(path))
    if not files:
        raise FileNotFoundError(f"no image files under {path}")
    if len(files) > max_images:
        picks = np.random.default_rng(seed).choice(len(files), size=max_images, replace=False)
        files = [files[i] for i in sorted(picks)]
    total = np.zeros(3)
    total_sq = np.zeros(3)
    count = 0
    for file in files:
        pixels = np.asarray(_load_rgb(file), dtype=np.float64).reshape(-1, 3) / 255.0
        total += pixels.sum(0)
        total_sq += (pixels ** 2).sum(0)
        count += len(pixels)
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean ** 2, 0.0))
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def _normalize_stats(path: Path, normalize, seed: int):
    """(mean, std) for Normalize.from_stats, or None for no normalization."""
    if normalize is None:
        return None
    if isinstance(normalize, str):
        if normalize == "imagenet":
            return IMAGENET_STATS
        if normalize == "data":
            return image_folder_stats(path / "train", seed=seed)
        raise ValueError(f"normalize must be None, 'imagenet', 'data' or (mean, std); got {normalize!r}")
    try:
        mean, std = normalize
        mean, std = [float(m) for m in mean], [float(s) for s in std]
    except (TypeError, ValueError):
        raise TypeError(f"normalize must be None, 'imagenet', 'data' or (mean, std) with 3 values each; "
                        f"got {normalize!r}") from None
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise ValueError(f"normalize=(mean, std) needs 3 means and 3 positive stds, got {normalize!r}")
    return tuple(mean), tuple(std)


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def get_dls(path: str | os.PathLike, size: int, bs: int = 64, *, item_size: int | None = None,
            normalize="data", augment: bool = True, seed: int = 0, num_workers: int = 0, device=None):
    """DataLoaders for an imagenette2-layout folder, built with the DataBlock the chapter uses.

    Pipeline: ``RGBImage`` files -> ``Resize(item_size)`` (random crop for training, centre crop for
    validation) -> on batches ``aug_transforms(size=size, min_scale=0.75)`` and ``Normalize``.
    With ``augment=False`` items are resized straight to `size` and no batch augmentation runs.

    Args:
        path: data folder holding ``train/`` and ``val/`` (class = parent folder name).
        size: side of the square images the model sees.
        bs: batch size.
        item_size: side of the item-level resize (presizing); default ``2 * size``.
        normalize: None (no normalization), "imagenet" (ImageNet statistics), "data" (default:
            statistics of up to 500 training images, see image_folder_stats), or (mean, std).
        augment: apply the random batch augmentations to the training set.
        seed: seeds the shuffling (each loader gets its own ``random.Random``, see
            seed_dataloaders; no global state is touched).  Random augmentations draw from the
            global generators at iteration time, as in fastai; ``make_learner(seed=...)`` seeds them
            and re-seeds the shuffling.
        num_workers: DataLoader worker processes; 0 (default) is fastest on a 2-core machine.
        device: device of the batches (default: fastai's choice, the GPU when there is one).

    Returns:
        fastai DataLoaders with ``.train`` and ``.valid``; ``dls.c`` is the number of classes.
    """
    path = Path(path)
    if not (path / "train").is_dir() or not (path / "val").is_dir():
        raise FileNotFoundError(f"{path} must hold train/ and val/ folders (the imagenette2 layout)")
    size = _positive_int(size, "size")
    bs = _positive_int(bs, "bs")
    item_size = 2 * size if item_size is None else _positive_int(item_size, "item_size")
    if item_size < size:
        raise ValueError(f"item_size ({item_size}) must be >= size ({size})")
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(f"num_workers must be an int >= 0, got {num_workers!r}")
    if not isinstance(augment, bool):
        raise TypeError(f"augment must be a bool, got {type(augment).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    stats = _normalize_stats(path, normalize, int(seed))

    batch_tfms = aug_transforms(size=size, min_scale=0.75) if augment else []
    if stats is not None:
        batch_tfms.append(Normalize.from_stats(*stats))
    block = DataBlock(
        blocks=(ImageBlock(cls=RGBImage), CategoryBlock),
        get_items=sorted_image_files,
        get_y=parent_label,
        splitter=GrandparentSplitter(train_name="train", valid_name="val"),
        item_tfms=Resize(item_size if augment else size),
        batch_tfms=batch_tfms,
    )
    kwargs = {} if device is None else {"device": device}
    dls = block.dataloaders(path, path=path, bs=bs, num_workers=num_workers, **kwargs)
    seed_dataloaders(dls, int(seed))
    return dls


def seed_dataloaders(dls, seed: int) -> None:
    """Give each DataLoader of `dls` its own shuffling generator derived from `seed` (in place).

    fastai seeds a loader's shuffle from the global ``random`` module when it is built, and the
    generator advances every epoch; re-seeding makes the batch order a function of `seed` alone.

    Args:
        dls: fastai DataLoaders.
        seed: non-negative int.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    for index, loader in enumerate(dls.loaders):
        loader.rng = random.Random(int(seed) * 1000 + index)


def main(argv: list[str] | None = None) -> None:
    """``python -m workbook.data [--variant V] [--label-noise F] [--seed N]``: generate and print the path."""
    import argparse

    parser = argparse.ArgumentParser(description="Generate the embedded synthetic Imagenette-layout data set.")
    parser.add_argument("--variant", default="small", choices=sorted(VARIANTS))
    parser.add_argument("--label-noise", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    root = make_synthetic_imagenette(variant=args.variant, label_noise=args.label_noise, seed=args.seed)
    marker = _read_marker(root) or {}
    print(f"{root}  ({marker.get('n_train')} train + {marker.get('n_val')} val images, synthetic)")


if __name__ == "__main__":
    main()

"""Data sets and DataLoaders for the Sizing & TTA workbook.

Two sources sit behind one function, :func:`get_imagenette`:

* **The embedded synthetic set (default)** -- ``imagenette-synthetic-<variant>``, generated on
  this machine from a seed (no download, same bytes on every run).  It is *not* Imagenette: every
  image is a computer-drawn shape (:data:`CLASS_NAMES`: disc, striped disc, ring, square, dotted
  square, triangle, cross, crescent, bar, star) on a cluttered, colour-cast background, in the
  imagenette2 folder layout (``train/<class>/*.JPEG``, ``val/<class>/*.JPEG``), so that every
  DataBlock line is the one you would write for the real data set.  Images are 60-140 px on each
  side, a quarter of the objects straddle an edge, the striped and dotted classes need resolution
  to tell apart, and a colour cast puts the channel means near (0.60, 0.36, 0.21).  Variants
  (:data:`VARIANTS`, images per class, train/val): ``"tiny"`` 8/4, ``"small"`` 150/50 (the
  default), ``"large"`` 700/100.  How it is drawn, and why: :mod:`workbook.synthetic`.

* **Real Imagenette** -- names ``"160"``, ``"320"``, ``"full"`` download with fastai's
  ``untar_data(URLs.IMAGENETTE_160 / _320 / URLs.IMAGENETTE)`` into ``$FASTAI_HOME``.  With the
  environment variable ``IMAGENETTE_PATH`` set to a local copy (the folder holding ``train/`` and
  ``val/``), that copy is used instead and nothing is downloaded.  Offline, the call fails within a
  few seconds and says how to use the embedded set or a local copy (:mod:`workbook.download`).  The
  variants and label noise of the embedded set are seeded samples of it, folders of symbolic links
  (:func:`make_subset`).

The environment variable ``WORKBOOK_DATA`` (:func:`data_name`) names the data set that
``get_imagenette()`` returns when called without a name: every notebook and ``workbook.train``
follow it.  :func:`class_names` reads the classes' readable names from the folders (Imagenette's
WordNet ids become words); :func:`describe_data` says in one line what a data folder holds.

Images are opened by :class:`RGBImage` (used by :func:`get_dls`): grayscale, CMYK, palette or
alpha images are converted to RGB; a truncated or unreadable file raises
:class:`CorruptImageError`, which names the file and says how to fix it (delete or replace it;
:func:`find_corrupt_images` lists them all).  We raise instead of skipping: skipping inside a
DataLoader silently changes the data set and its batch sizes.

Generated data lives under ``cache_dir()/data`` (``$WORKBOOK_CACHE`` or ``<repo>/.cache``,
:mod:`workbook.cache`).  ``python -m workbook.data`` generates the embedded set (``make data``).
"""
from __future__ import annotations

import csv
import hashlib
import os
import random
from pathlib import Path

import numpy as np
from fastai.data.block import CategoryBlock, DataBlock
from fastai.data.external import URLs
from fastai.data.transforms import GrandparentSplitter, Normalize, get_image_files, parent_label
from fastai.vision.augment import Resize, aug_transforms
from fastai.vision.core import PILImage
from fastai.vision.data import ImageBlock
from fastcore.foundation import L
from PIL import Image

from workbook.cache import build_once, cache_dir, read_marker
from workbook.data_names import DATA_ENV, DATA_NAMES, REAL_IMAGENETTE, SUBSET_VARIANTS, SYNTHETIC_NAMES, data_name
from workbook.download import check_imagenette_folder, download_imagenette
from workbook.synthetic import (CLASS_NAMES, VARIANTS, check_variant_args, make_synthetic_imagenette, name_suffix,
                                noisy_labels)

__all__ = [
    "CLASS_NAMES", "VARIANTS", "IMAGENET_STATS", "REAL_IMAGENETTE_URLS", "CorruptImageError", "RGBImage",
    "DATA_NAMES", "DATA_ENV", "IMAGENETTE_CLASS_NAMES", "data_name", "make_subset", "class_folders", "class_names",
    "readable_class_name", "describe_data", "get_imagenette", "open_rgb",
    "find_corrupt_images", "sorted_image_files", "image_folder_stats", "get_dls", "seed_dataloaders",
]

IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
REAL_IMAGENETTE_URLS = dict(zip(REAL_IMAGENETTE, (URLs.IMAGENETTE_160, URLs.IMAGENETTE_320, URLs.IMAGENETTE)))
# Imagenette's WordNet ids and their words (the class list of https://github.com/fastai/imagenette).
IMAGENETTE_CLASS_NAMES = {
    "n01440764": "tench", "n02102040": "English springer", "n02979186": "cassette player",
    "n03000684": "chain saw", "n03028079": "church", "n03394916": "French horn", "n03417042": "garbage truck",
    "n03425413": "gas pump", "n03445777": "golf ball", "n03888605": "parachute",
}


# --------------------------------------------------------------------------------------------
# Real Imagenette: a local copy or a download, and seeded samples of it
# --------------------------------------------------------------------------------------------
def _real_imagenette(name: str, url: str | None) -> Path:
    """The folder of real Imagenette `name`: ``$IMAGENETTE_PATH`` when set, else fastai's download."""
    local = os.environ.get("IMAGENETTE_PATH", "").strip()
    if local:
        return check_imagenette_folder(Path(local).expanduser(), "IMAGENETTE_PATH=")
    return download_imagenette(name, url or REAL_IMAGENETTE_URLS[name])


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
    noisy = noisy_labels([len(files) for files in chosen["train"]], label_noise, seed)
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
    check_variant_args(variant, label_noise, seed, variants=SUBSET_VARIANTS)
    source = check_imagenette_folder(Path(source).expanduser().resolve(), "The data folder")
    parent = Path(dest).expanduser() if dest is not None else cache_dir() / "data"
    digest = hashlib.sha1(str(source).encode()).hexdigest()[:8]
    params = {"subset_version": 1, "source": str(source), "variant": variant, "label_noise": float(label_noise),
              "seed": int(seed)}
    per_class = None if variant == "all" else VARIANTS[variant]
    return build_once(parent / f"{source.name}-{variant}{name_suffix(label_noise, seed)}-{digest}", params,
                      lambda folder: _write_subset(folder, source, per_class, float(label_noise), int(seed)))


# --------------------------------------------------------------------------------------------
# Choosing the data set (WORKBOOK_DATA), naming its classes
# --------------------------------------------------------------------------------------------
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
        check_variant_args(variant, label_noise, seed, variants=SUBSET_VARIANTS)   # before any download
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
    marker = read_marker(path) or {}
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


if __name__ == "__main__":  # the generator's command line, as before; make data runs it without fastai
    from workbook.synthetic import main
    main()

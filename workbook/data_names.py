"""The names of the data sets that ``get_imagenette``, ``WORKBOOK_DATA`` and ``workbook.train --data`` accept.

Apart from :mod:`workbook.data` because it imports no fastai: ``python -m workbook.train --help`` answers at once.
"""
import os

from workbook.synthetic import VARIANTS

__all__ = ["SYNTHETIC_NAMES", "REAL_IMAGENETTE", "SUBSET_VARIANTS", "DATA_NAMES", "DATA_ENV", "data_name"]

SYNTHETIC_NAMES = {"synthetic": "small", "synthetic-small": "small", "synthetic-large": "large",
                   "synthetic-tiny": "tiny"}
REAL_IMAGENETTE = ("160", "320", "full")   # fastai's IMAGENETTE_160, IMAGENETTE_320 and IMAGENETTE downloads
SUBSET_VARIANTS = (*VARIANTS, "all")     # samples of real Imagenette (make_subset): the same counts, or all
DATA_NAMES = (*SYNTHETIC_NAMES, *REAL_IMAGENETTE)      # the values WORKBOOK_DATA accepts
DATA_ENV = "WORKBOOK_DATA"


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

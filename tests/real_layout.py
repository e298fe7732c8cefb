"""An imagenette-layout copy of an embedded set whose class folders carry real Imagenette WordNet ids."""
import shutil
from pathlib import Path

from workbook.data import CLASS_NAMES, IMAGENETTE_CLASS_NAMES

# Synthetic class i -> the i-th Imagenette WordNet id (both sorted), e.g. n02_ring -> n02979186.
WNID_OF = dict(zip(CLASS_NAMES, sorted(IMAGENETTE_CLASS_NAMES)))


def imagenette_copy(source: Path, dest: Path) -> Path:
    """Copy `source`'s train/ and val/ images into `dest` under WordNet-id folders; returns `dest`."""
    for split in ("train", "val"):
        for synthetic, wnid in WNID_OF.items():
            shutil.copytree(source / split / synthetic, dest / split / wnid)
    return dest

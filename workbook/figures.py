"""Figures the workbook shows, drawn by project code; `make images` writes them to images/.

Notebooks call the plotting functions directly; README.md and the notebooks' markdown show the
saved PNGs.
"""
import sys
from pathlib import Path

import matplotlib

from workbook.data import CLASS_NAMES, get_imagenette, open_rgb, sorted_image_files

__all__ = ["class_examples_figure", "IMAGES", "main"]

IMAGES = Path(__file__).resolve().parents[1] / "images"


def class_examples_figure(path, *, scale: int = 140):
    """The first training image of each class, drawn at one common scale so sizes compare.

    Args:
        path: an imagenette2-layout folder (its `train/<class>` folders are read).
        scale: side in pixels of every panel's box (the largest image side of the embedded set).

    Returns:
        The matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 5, figsize=(10, 5.6), dpi=80)
    for ax, name in zip(axes.flat, CLASS_NAMES):
        image = open_rgb(next(iter(sorted_image_files(Path(path) / "train" / name))))
        ax.imshow(image)
        ax.set_xlim(0, scale)  # the same box in every panel, so image sizes can be compared
        ax.set_ylim(scale, 0)
        ax.set_title(f"{name}\n{image.width}×{image.height} px", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("Embedded synthetic set: the first training image of each class", fontsize=12)
    fig.tight_layout()
    return fig


def main(argv=None) -> int:
    """Write every figure under images/."""
    matplotlib.use("Agg")
    IMAGES.mkdir(exist_ok=True)
    fig = class_examples_figure(get_imagenette())
    fig.savefig(IMAGES / "embedded_classes.png", dpi=80)
    print(f"wrote {IMAGES / 'embedded_classes.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

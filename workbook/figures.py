"""Figures the workbook shows, drawn by project code; `make images` writes them to images/.

Notebooks call the plotting functions directly; README.md and the notebooks' markdown show the
saved PNGs.
"""
import sys
from pathlib import Path

import matplotlib

from workbook.data import class_folders, get_imagenette, open_rgb, readable_class_name, sorted_image_files

__all__ = ["class_examples_figure", "IMAGES", "main"]

IMAGES = Path(__file__).resolve().parents[1] / "images"


def class_examples_figure(path, *, scale: int | None = None):
    """The first training image of each class (the first ten classes), drawn at one common scale so sizes compare.

    Args:
        path: an imagenette2-layout folder (its `train/<class>` folders are read).
        scale: side in pixels of every panel's box; default the largest side among the images shown
            (140 px on the embedded set).

    Returns:
        The matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    folders = class_folders(path)[:10]
    images = [open_rgb(next(iter(sorted_image_files(Path(path) / "train" / name)))) for name in folders]
    scale = scale or max(max(image.size) for image in images)
    fig, axes = plt.subplots(2, 5, figsize=(10, 5.6), dpi=80)
    for ax in axes.flat:
        ax.axis("off")
    for ax, name, image in zip(axes.flat, folders, images):
        ax.axis("on")
        ax.imshow(image)
        ax.set_xlim(0, scale)  # the same box in every panel, so image sizes can be compared
        ax.set_ylim(scale, 0)
        # The folder name, and the class's word when the folder name is a WordNet id that does not say it.
        word = readable_class_name(name)
        label = name if name.endswith(word) else f"{word} ({name})"
        ax.set_title(f"{label}\n{image.width}×{image.height} px", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    synthetic = Path(path).name.startswith("imagenette-synthetic")
    fig.suptitle(f"{'Embedded synthetic set' if synthetic else Path(path).name}: the first training image of each class",
                 fontsize=12)
    fig.tight_layout()
    return fig


def main(argv=None) -> int:
    """Write every figure under images/."""
    matplotlib.use("Agg")
    IMAGES.mkdir(exist_ok=True)
    fig = class_examples_figure(get_imagenette("synthetic"))   # the README shows the embedded set, whatever WORKBOOK_DATA says
    fig.savefig(IMAGES / "embedded_classes.png", dpi=80)
    print(f"wrote {IMAGES / 'embedded_classes.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

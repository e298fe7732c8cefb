"""Every figure the workbook draws: the notebooks call these functions, and ``make images``
(``python -m workbook.plots``) saves the README's figures under images/.

* :func:`class_examples_figure`: the first training image of each class, at one common scale;
* :func:`five_crops_figure`: one image with the outlines of its five crops (torchvision's order:
  top-left, top-right, bottom-left, bottom-right, centre) and each crop on its own, optionally with
  the model's prediction for it (:func:`crop_boxes` gives the boxes);
* :func:`curves_figure`: the training curves of a ``python -m workbook.train`` run;
* :func:`seed_comparison`, :func:`epoch_curves`, :func:`budget_comparison`, :func:`top_probability_histograms`:
  stored experiments over seeds (``workbook.experiments``), each seed a point and the mean ± standard error
  a bar;
* :data:`RUN_STYLES` gives each run of a comparison a colour, a marker and a line style.

Notebooks show figures and never save them: nothing a notebook runs writes into the repository; only
:func:`main` (``make images``) writes, into images/.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from workbook.data import class_folders, get_imagenette, open_rgb, readable_class_name, sorted_image_files
from workbook.experiments import arm_values

__all__ = ["CROP_NAMES", "RUN_STYLES", "IMAGES", "crop_boxes", "five_crops_figure", "class_examples_figure",
           "curves_figure", "budget_comparison", "epoch_curves", "seed_comparison", "top_probability_histograms",
           "main"]

if TYPE_CHECKING:
    from workbook.train import RunResult

IMAGES = Path(__file__).resolve().parents[1] / "images"      # the README's figures (make images)

CROP_NAMES = ("top-left", "top-right", "bottom-left", "bottom-right", "centre")
# Okabe & Ito's colour-blind-safe palette (vermillion, orange, bluish green, blue) and white for the
# centre crop; each crop's panel also names it, so no colour has to be told apart to read the figure.
_COLOURS = ("#D55E00", "#E69F00", "#009E73", "#0072B2", "white")
# Line and marker styles for comparing runs in one plot: Okabe-Ito colours and a different marker and
# line style each, so the runs stay apart for colour-blind readers and in a grey-scale print.
RUN_STYLES = ({"color": "#0072B2", "marker": "o", "linestyle": "-"},
              {"color": "#E69F00", "marker": "s", "linestyle": "--"},
              {"color": "#009E73", "marker": "^", "linestyle": "-."},
              {"color": "#CC79A7", "marker": "D", "linestyle": ":"})


def crop_boxes(height: int, width: int, size) -> list[tuple[int, int, int, int]]:
    """(top, left, h, w) of the five crops of a height x width image, in torchvision's order and rounding."""
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    if not (0 < h <= height and 0 < w <= width):
        raise ValueError(f"a crop of {(h, w)} does not fit in an image of {(height, width)}")
    top, left = int(round((height - h) / 2.0)), int(round((width - w) / 2.0))
    return [(0, 0, h, w), (0, width - w, h, w), (height - h, 0, h, w), (height - h, width - w, h, w),
            (top, left, h, w)]


def _as_picture(image: torch.Tensor):
    """[C, H, W] in [0, 1] -> an array matplotlib shows (H, W, C), or (H, W) for one channel."""
    if not isinstance(image, torch.Tensor) or image.ndim != 3:
        raise ValueError("image must be a tensor [C, H, W] with values in [0, 1]")
    picture = image.detach().float().clamp(0, 1).cpu().permute(1, 2, 0).numpy()
    return picture[..., 0] if picture.shape[-1] == 1 else picture


def five_crops_figure(image: torch.Tensor, size, *, titles: list[str] | None = None, suptitle: str = ""):
    """The image with its five crop outlines, then the five crops.

    Args:
        image: one image [C, H, W] with values in [0, 1] (undo the normalization first).
        size: the crop's side, or (h, w).
        titles: five captions for the crops (e.g. the prediction on each); default the crop names.
        suptitle: a title for the whole figure.

    Returns:
        The matplotlib Figure (1 row, 6 panels).
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    boxes = crop_boxes(image.shape[-2], image.shape[-1], size)
    titles = list(CROP_NAMES) if titles is None else list(titles)
    if len(titles) != 5:
        raise ValueError(f"titles needs 5 captions, got {len(titles)}")
    picture = _as_picture(image)
    fig, axes = plt.subplots(1, 6, figsize=(13, 2.9), dpi=80)
    axes[0].imshow(picture)
    axes[0].set_title(f"input {image.shape[-2]}×{image.shape[-1]} px", fontsize=10)
    for (top, left, h, w), colour in zip(boxes, _COLOURS):
        # Inset by half a pixel so that the outlines of crops sharing an edge stay visible.
        axes[0].add_patch(Rectangle((left - 0.5 + 0.6, top - 0.5 + 0.6), w - 1.2, h - 1.2, fill=False,
                                    edgecolor=colour, linewidth=1.6))
    for ax, (top, left, h, w), colour, name, title in zip(axes[1:], boxes, _COLOURS, CROP_NAMES, titles):
        ax.imshow(picture[top:top + h, left:left + w])
        ax.set_title(title if title == name else f"{name}\n{title}", fontsize=9)
        for spine in ax.spines.values():
            spine.set_edgecolor(colour if colour != "white" else "black")
            spine.set_linewidth(2.5)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    if suptitle:
        fig.suptitle(suptitle, fontsize=11)
    fig.tight_layout()
    return fig


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


def curves_figure(result: RunResult):
    """Training curves of a run: losses (left) and validation accuracy (right) against epochs.

    Stage boundaries of a progressive schedule are drawn as dotted lines labelled with the size;
    the TTA accuracy, when measured, is a star after the last epoch.  Uses a standalone
    ``matplotlib.figure.Figure`` (no pyplot state, no backend change).

    Args:
        result: a :class:`workbook.train.RunResult`.

    Returns:
        The Figure.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4), dpi=90)
    ax_loss, ax_acc = fig.subplots(1, 2)
    epochs = [row.epoch for row in result.rows]
    if result.batch_losses:
        xs, ys = zip(*result.batch_losses)
        ax_loss.plot(xs, ys, color="tab:blue", alpha=0.35, lw=1, label="train loss (per batch, smoothed)")
    ax_loss.plot(epochs, [r.train_loss for r in result.rows], "o-", color="tab:blue", label="train loss (epoch end)")
    ax_loss.plot(epochs, [r.valid_loss for r in result.rows], "s-", color="tab:orange", label="valid loss")
    ax_acc.plot(epochs, [r.accuracy for r in result.rows], "o-", color="tab:green", label="valid accuracy")
    if result.tta_accuracy is not None:
        ax_acc.plot([epochs[-1] + 0.3], [result.tta_accuracy], "*", ms=12, color="tab:red",
                    label=f"TTA accuracy {result.tta_accuracy:.3f}")
    for ax in (ax_loss, ax_acc):
        previous = None
        for row in result.rows:
            if row.size != previous:
                ax.axvline(row.epoch - 1, ls=":", color="grey", lw=1)
                ax.text(row.epoch - 1, 1.0, f" {row.size} px", transform=ax.get_xaxis_transform(),
                        va="top", fontsize=8, color="grey")
                previous = row.size
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    ax_loss.set_ylabel("loss")
    ax_acc.set_ylabel("accuracy")
    ax_acc.set_ylim(0, 1)
    title = result.config.describe()
    if result.data:
        title += f"\ndata: {result.data['folder']} ({result.data['n_train']:,} train / {result.data['n_valid']:,} val images)"
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------------
# Stored experiments over seeds (workbook.experiments): each seed as a point, the mean ± standard error
# as a bar, so a reader sees both the spread and the summary.

def _arms(stored: dict, arms) -> list:
    """`arms` as a list, by default every stored arm in its declared order."""
    return list(stored.get("arm_order", stored["runs"])) if arms is None else list(arms)


def _mean_se(values):
    import numpy as np
    values = np.asarray(values, dtype=float)
    se = values.std(ddof=1, axis=0) / np.sqrt(len(values)) if len(values) > 1 else np.zeros_like(values[0])
    return values.mean(axis=0), se


def seed_comparison(stored: dict, metric: str = "accuracy", *, arms=None, ax=None, label: str | None = None):
    """Each arm's `metric`: one marker per seed and the mean ± standard error as an error bar.

    Args:
        stored: a results dict from ``workbook.experiments.load``.
        metric: the per-run key to plot (e.g. "accuracy", "ece").
        arms: the arms to show, in order (default all).
        ax: a matplotlib Axes (default a new figure).
        label: the y-axis label (default `metric`).

    Returns:
        The Axes.
    """
    import matplotlib.pyplot as plt
    arms = _arms(stored, arms)
    if ax is None:
        _, ax = plt.subplots(figsize=(1.6 + 1.5 * len(arms), 3.4), dpi=90)
    for i, (arm, style) in enumerate(zip(arms, RUN_STYLES * len(arms))):
        values = arm_values(stored, arm, metric)
        mean, se = _mean_se(values)
        ax.scatter([i + 0.12] * len(values), values, color=style["color"], marker=style["marker"], alpha=0.5, s=22)
        ax.errorbar([i - 0.12], [mean], yerr=[se], color=style["color"], marker=style["marker"], capsize=5,
                    markersize=8)
    ax.set_xticks(range(len(arms)), [arm.replace(", ", ",\n") for arm in arms], fontsize=8)
    ax.set_xlim(-0.6, len(arms) - 0.4)
    ax.set_ylabel(label or metric)
    ax.set_title(f"{stored['experiment']}: mean ± SE (bars) and seeds (points)", fontsize=9)
    return ax


def epoch_curves(stored: dict, *, arms=None, ax=None):
    """Validation accuracy after each epoch, mean over seeds with a ± standard error band, per arm."""
    import matplotlib.pyplot as plt
    import numpy as np
    arms = _arms(stored, arms)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.6), dpi=90)
    for arm, style in zip(arms, RUN_STYLES * len(arms)):
        mean, se = _mean_se(arm_values(stored, arm, "epoch_accuracy"))
        epochs = np.arange(1, len(mean) + 1)
        ax.plot(epochs, mean, label=arm, **style)
        ax.fill_between(epochs, mean - se, mean + se, color=style["color"], alpha=0.18)
    ax.set(xlabel="epoch", ylabel="validation accuracy", title="Accuracy after each epoch (mean ± SE over seeds)")
    ax.legend(fontsize=8)
    return ax


def budget_comparison(stored: dict, series: dict, metric: str = "accuracy", *, ax=None, label: str | None = None):
    """Final `metric` against the training budget (epochs), one line per recipe: the mean ± standard error
    over seeds as error bars, each seed a faint point.

    Args:
        stored: a results dict from ``workbook.experiments.load``.
        series: recipe name -> the arms that train it with different budgets; an arm's budget is the number
            of epochs in its stored configuration (``len(sizes)``).
        metric: the per-run key to plot.
        ax: a matplotlib Axes (default a new figure).
        label: the y-axis label (default `metric`).

    Returns:
        The Axes.
    """
    import matplotlib.pyplot as plt
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.6), dpi=90)
    unknown = [arm for arms in series.values() for arm in arms if arm not in stored["runs"]]
    if unknown:
        raise ValueError(f"arms {unknown} are not in the stored experiment {stored['experiment']!r}; "
                         f"it has {list(stored['runs'])}")
    budget = {arm: len(stored["config"]["arms"][arm]["sizes"]) for arms in series.values() for arm in arms}
    for (name, arms), style in zip(series.items(), RUN_STYLES * len(series)):
        values = [arm_values(stored, arm, metric) for arm in arms]
        means, ses = zip(*(_mean_se(v) for v in values))
        ax.errorbar([budget[arm] for arm in arms], means, yerr=ses, label=name, capsize=4, **style)
        for arm, v in zip(arms, values):
            ax.scatter([budget[arm]] * len(v), v, color=style["color"], marker=style["marker"], alpha=0.3, s=16)
    ax.set_xscale("log")
    ticks = sorted(set(budget.values()))
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.minorticks_off()
    ax.set(xlabel="training budget (epochs, one-cycle schedule)", ylabel=label or metric,
           title=f"{stored['experiment']}: mean ± SE (bars) and seeds (points)")
    ax.legend(fontsize=8)
    return ax


def top_probability_histograms(stored: dict, *, arms=None, ax=None):
    """Distribution of the top predicted probability on the validation images, averaged over seeds."""
    import matplotlib.pyplot as plt
    import numpy as np
    arms = _arms(stored, arms)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.6), dpi=90)
    for arm, style in zip(arms, RUN_STYLES * len(arms)):
        mean, _ = _mean_se(arm_values(stored, arm, "top_p_histogram"))
        edges = np.linspace(0, 1, len(mean) + 1)
        ax.stairs(mean, edges, color=style["color"], linestyle=style["linestyle"], linewidth=2, label=arm)
    ax.set(xlabel="top probability", ylabel="validation images (mean over seeds)",
           title="Top predicted probability")
    ax.legend(fontsize=8, loc="upper left")
    return ax


def main(argv=None) -> int:
    """Write every figure under images/."""
    import matplotlib

    matplotlib.use("Agg")
    IMAGES.mkdir(exist_ok=True)
    fig = class_examples_figure(get_imagenette("synthetic"))   # the README shows the embedded set, whatever WORKBOOK_DATA says
    fig.savefig(IMAGES / "embedded_classes.png", dpi=80)
    print(f"wrote {IMAGES / 'embedded_classes.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

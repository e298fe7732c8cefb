"""Build whole golden submissions from the release notebooks: the student's version of each
notebook with some solution cells filled in (the reference's code, a mutant, or an attack)."""
import inspect
from pathlib import Path

import nbformat

from autograder.config import ASSIGNMENT, REPO_ROOT

SOURCE = REPO_ROOT / "source" / ASSIGNMENT
RELEASE = REPO_ROOT / "release" / ASSIGNMENT
# The seed student's answers (shared/seed): "ImageNet is a computer vision model"; Imagenette for
# training from scratch and ImageNet for transfer learning (option a).
SEED_ANSWERS = {"imagenet_is_answer": 'imagenet_is = "model"',
                "why_imagenette_first_answer": 'why_imagenette_first = "a"'}


def grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def solution_cells(path: Path) -> dict[str, str]:
    nb = nbformat.read(path, as_version=4)
    return {grade_id(c): c.source for c in nb.cells
            if c.get("metadata", {}).get("nbgrader", {}).get("solution") and grade_id(c)}


def write_submission(dest: Path, fills: dict[str, dict[str, str]] | None = None, reference: bool = False,
                     notebooks: list[str] | None = None) -> Path:
    """Copy release notebooks into `dest`, filling solution cells.

    Args:
        dest: the student's folder.
        fills: {notebook stem: {solution grade_id: code}} to put into those cells.
        reference: fill every solution cell with the source notebook's solution first.
        notebooks: stems of the notebooks to include (default: all; a missing one scores zero).
    """
    dest.mkdir(parents=True, exist_ok=True)
    for release_nb in sorted(RELEASE.glob("*.ipynb")):
        if notebooks is not None and release_nb.stem not in notebooks:
            continue
        nb = nbformat.read(release_nb, as_version=4)
        answers = solution_cells(SOURCE / release_nb.name) if reference else {}
        answers.update((fills or {}).get(release_nb.stem, {}))
        for cell in nb.cells:
            if grade_id(cell) in answers:
                cell.source = answers[grade_id(cell)]
        nbformat.write(nb, dest / release_nb.name)
    return dest


def function_source(fn, name: str) -> str:
    """The source of `fn` and of the module-level helpers and constants it uses, bound to the
    exercise's name as a student would define it in the solution cell."""
    module = inspect.getmodule(fn)
    helpers, constants, seen = [], [], set()

    def names(code):
        # Comprehensions and lambdas are nested code objects with their own names.
        yield from code.co_names
        for const in code.co_consts:
            if inspect.iscode(const):
                yield from names(const)

    def visit(f):
        for ref in names(f.__code__):
            obj = getattr(module, ref, None)
            if ref in seen or obj is None:
                continue
            seen.add(ref)
            if inspect.isfunction(obj) and obj.__module__ == module.__name__:
                visit(obj)
                helpers.append(inspect.getsource(obj))
            elif inspect.ismodule(obj):
                constants.insert(0, f"import {obj.__name__} as {ref}")
            elif isinstance(obj, (int, float, str, list, tuple)):
                constants.append(f"{ref} = {obj!r}")

    visit(fn)
    parts = ["import torch", *constants, *helpers, inspect.getsource(fn), f"{name} = {fn.__name__}"]
    return "\n\n".join(parts) + "\n"


def write_golden_class(dest: Path) -> list[str]:
    """The golden class for `make grade`: reference, blank, every whole-submission mutant and attack."""
    from autograder.golden.attacks import normalization as attacks
    from autograder.golden.mutants import normalization as mutants

    slice_notebooks = ["01_imagenette", "02_normalization"]
    write_submission(dest / "reference", reference=True, notebooks=slice_notebooks)
    write_submission(dest / "blank", notebooks=slice_notebooks)
    from autograder.golden.mutants import label_smoothing, resizing, tta

    # The seed student's mistakes, each where the workbook asks for it: 01's answers, the growing batch
    # size (03), `cbs=mixup` (05) and the label smoothing target [0.01, 0.01, 0.01, 0.96, 0.01] (06).
    seed_fills = {"01_imagenette": SEED_ANSWERS,
                  "03_progressive_resizing": {
                      "what_grows_answer": f"what_grows = {resizing.SEED_WHAT_GROWS!r}\n",
                      "progressive_fit_solution": function_source(resizing.fit_grows_batch_size, "progressive_fit")},
                  "05_mixup": {"q8_cbs_answer": 'q8_cbs = "mixup"'},
                  "06_label_smoothing": {"q13_target_answer": f"q13_target = {label_smoothing.SEED_Q13_ANSWER!r}\n"}}
    write_submission(dest / "seed_student", seed_fills, reference=True, notebooks=sorted(seed_fills))
    for i, mutant in enumerate(mutants.MUTANTS):
        solution_id = {"channel_stats": "channel_stats_solution", "normalize": "normalize_solution",
                       "streaming_channel_stats": "streaming_stats_solution"}[mutant.target]
        write_submission(dest / f"mutant_{i:02d}", {"02_normalization": {solution_id: function_source(mutant.fn, mutant.target)}},
                         reference=True, notebooks=["02_normalization"])
    # Right on a CPU (the input is there too); on CUDA the judge sees the result leave the input's device.
    write_submission(dest / "mutant_tta_on_cpu",
                     {"04_test_time_augmentation": {
                         "five_crop_tta_solution": function_source(tta.RAW["tta_results_on_cpu"], "five_crop_tta")}},
                     reference=True, notebooks=["04_test_time_augmentation"])
    for name, attack in attacks.ATTACKS.items():
        write_submission(dest / f"attack_{name}", {"02_normalization": attack["fills"]}, notebooks=["02_normalization"])
    return sorted(p.name for p in dest.iterdir())


if __name__ == "__main__":
    import sys
    print("\n".join(write_golden_class(Path(sys.argv[1]))))

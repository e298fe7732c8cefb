"""Build whole golden submissions from the release notebooks: the student's version of each
notebook with some solution cells filled in (the reference's code, a mutant, or an attack)."""
import inspect
import shutil
from pathlib import Path

import nbformat

from autograder.config import ASSIGNMENT, REPO_ROOT

SOURCE = REPO_ROOT / "source" / ASSIGNMENT
RELEASE = REPO_ROOT / "release" / ASSIGNMENT


def grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def solution_cells(path: Path) -> dict[str, str]:
    nb = nbformat.read(path, as_version=4)
    return {grade_id(c): c.source for c in nb.cells
            if c.get("metadata", {}).get("nbgrader", {}).get("solution") and grade_id(c)}


def write_submission(dest: Path, fills: dict[str, dict[str, str]] | None = None, reference: bool = False) -> Path:
    """Copy every release notebook into `dest`, filling solution cells.

    Args:
        dest: the student's folder.
        fills: {notebook stem: {solution grade_id: code}} to put into those cells.
        reference: fill every solution cell with the source notebook's solution first.
    """
    dest.mkdir(parents=True, exist_ok=True)
    for release_nb in sorted(RELEASE.glob("*.ipynb")):
        nb = nbformat.read(release_nb, as_version=4)
        answers = solution_cells(SOURCE / release_nb.name) if reference else {}
        answers.update((fills or {}).get(release_nb.stem, {}))
        for cell in nb.cells:
            if grade_id(cell) in answers:
                cell.source = answers[grade_id(cell)]
        nbformat.write(nb, dest / release_nb.name)
    return dest


def function_source(fn, name: str) -> str:
    """The source of `fn`, bound to the exercise's name as a student would define it."""
    return f"import torch\n\n{inspect.getsource(fn)}\n{name} = {fn.__name__}\n"


def copy_tree(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest

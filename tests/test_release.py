"""The student release: identical to a fresh generation, and free of anything instructor-only."""
import ast
import filecmp
import re

import nbformat
import pytest

from autograder.rubric import REGISTRY
from autograder.config import ASSIGNMENT, REPO_ROOT
from autograder.release import generate_release

SOURCE = REPO_ROOT / "source" / ASSIGNMENT
RELEASE = REPO_ROOT / "release"
LEAKS = ["BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "autograder", "record(",
         "record_value("]


def nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def test_committed_release_equals_a_fresh_generation(tmp_path):
    fresh = tmp_path / "release"
    generate_release(fresh, tmp_path / "grading")
    comparison = filecmp.dircmp(RELEASE, fresh, ignore=["__pycache__"])
    stack, differences = [comparison], []
    while stack:
        c = stack.pop()
        differences += [f"{c.left}/{n}" for n in c.left_only + c.right_only + c.diff_files]
        _, mismatch, errors = filecmp.cmpfiles(c.left, c.right, c.common_files, shallow=False)
        differences += [f"{c.left}/{n}" for n in mismatch + errors]
        stack += list(c.subdirs.values())
    assert not differences, f"release/ differs from a fresh generation (run `make release`): {differences}"


@pytest.mark.parametrize("path", sorted((RELEASE / ASSIGNMENT).glob("*.ipynb")), ids=lambda p: p.name)
def test_release_holds_no_solution_hidden_test_or_reference(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        for leak in LEAKS:
            assert leak not in cell.source, f"{path.name}: {leak!r} reached the release"
        for output in cell.get("outputs", []):
            raise AssertionError(f"{path.name}: release cells carry outputs ({output.get('output_type')})")


def test_student_package_never_imports_the_grader():
    for path in (REPO_ROOT / "workbook").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.split(".")[0] == "autograder" for n in names), f"{path} imports autograder"


def source_cells():
    for path in sorted(SOURCE.glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            yield path.stem, cell


def test_every_autograded_test_cell_has_a_trusted_check_and_records_it():
    seen = []
    for _, cell in source_cells():
        meta = nbgrader_meta(cell)
        if meta.get("grade") and not meta.get("solution") and cell.cell_type == "code":
            gid = meta["grade_id"]
            assert gid in REGISTRY, f"grade cell {gid} has no rubric item in autograder.rubric"
            assert re.search(rf"record(_value)?\(\"{gid}\"", cell.source), f"grade cell {gid} does not record itself"
            assert cell.source.lstrip().startswith('"""'), f"grade cell {gid} must open with a one-line docstring"
            seen.append(gid)
    assert sorted(seen) == sorted(set(seen)), "a grade id is used twice"
    assert set(seen) == set(REGISTRY), f"checks without a cell: {set(REGISTRY) - set(seen)}"

"""Intake's pure parts, fast: ids, notebook normalization, the walk that never follows a link.
Whole classes through intake are graded in tests/test_grading_faults.py."""
import os

import nbformat
import pytest

from autograder.intake import (IntakeError, copy_submission, inspect_submission, nbgrader_ids, normalize_notebook,
                               submission_digest)

MASTER = {"answer": {"grade": False, "grade_id": "answer", "locked": False, "schema_version": 3, "solution": True,
                     "task": False, "cell_type": "code", "checksum": "a"},
          "test": {"grade": True, "grade_id": "test", "locked": True, "schema_version": 3, "solution": False,
                   "task": False, "cell_type": "code", "checksum": "b", "points": 2.0}}


def test_safe_names_are_their_own_ids_and_the_rest_are_mapped_stably():
    names = ["ada", "jane.doe@uni.edu", "jane[1]", "*", ".hidden", "a b", "x" * 70]
    ids = nbgrader_ids(names)
    assert ids["ada"] == "ada" and ids["jane.doe@uni.edu"] == "jane.doe@uni.edu"
    assert ids["jane[1]"].startswith("jane_1-") and ids["*"].startswith("student-") and ids[".hidden"].startswith("hidden-")
    assert len(set(ids.values())) == len(names)
    assert all(not set(i) & set("*?[]/ ") and not i.startswith(".") and len(i) <= 64 for i in ids.values())
    assert nbgrader_ids(list(reversed(names))) == ids


def test_a_mapped_id_never_takes_another_folders_name():
    taken = nbgrader_ids(["jane[1]"])["jane[1]"]
    ids = nbgrader_ids(["jane[1]", taken])
    assert ids[taken] == taken and ids["jane[1]"] != taken


def _cell(source, nbgrader=None, cell_id=None):
    cell = nbformat.v4.new_code_cell(source, metadata={"nbgrader": nbgrader} if nbgrader is not None else {})
    if cell_id is None:
        del cell["id"]
    else:
        cell["id"] = cell_id
    return cell


def test_old_notebooks_get_unique_cell_ids():
    # from_dict, not new_notebook: new_notebook validates, and validation repairs duplicate ids itself
    nb = nbformat.from_dict({"nbformat": 4, "nbformat_minor": 4, "metadata": {},
                             "cells": [_cell("a"), _cell("b", cell_id="cell-0"), _cell("c", cell_id="cell-0"),
                                       _cell("d", cell_id="bad id!")]})
    fixed, problems = normalize_notebook(nb, {})
    ids = [c["id"] for c in fixed.cells]
    assert len(set(ids)) == 4 and ids[1] == "cell-0" and fixed.nbformat_minor >= 5 and problems == []
    nbformat.validate(fixed)
    assert "id" not in nb.cells[0]  # the input is not changed


def test_tampered_metadata_is_restored_and_named():
    nb = nbformat.v4.new_notebook(cells=[
        _cell("x = 1", dict(MASTER["answer"]), "c1"),
        _cell("record()", {**MASTER["test"], "grade": False, "points": 0}, "c2"),
        _cell("free", {"grade": True, "grade_id": "bonus", "points": 100, "locked": True, "solution": False}, "c3"),
        _cell("plain", None, "c4")])
    fixed, problems = normalize_notebook(nb, MASTER)
    assert fixed.cells[1].metadata.nbgrader == MASTER["test"]
    assert "nbgrader" not in fixed.cells[2].metadata
    assert fixed.cells[0].metadata.nbgrader == MASTER["answer"] and "nbgrader" not in fixed.cells[3].metadata
    assert problems == ["test (grade: False, points: 0)", "bonus (not a cell of the assignment: ungraded)"]


def test_links_and_special_files_are_refused(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0")
    student = tmp_path / "class" / "ada"
    student.mkdir(parents=True)
    nbformat.write(nbformat.v4.new_notebook(cells=[_cell("x = 1", None, "c1")]), student / "nb.ipynb")
    (student / "data").mkdir()
    (student / "data" / "mine.txt").write_text("mine")
    (student / "data" / "stolen.txt").symlink_to(secret)
    (student / "folder").symlink_to(tmp_path)
    os.mkfifo(student / "pipe")
    (student / "linked.ipynb").symlink_to(student / "nb.ipynb")
    folder, valid, notes = inspect_submission(student, {"nb.ipynb", "linked.ipynb"})
    assert valid == {"nb.ipynb"} and any("linked.ipynb is a symbolic link" in n for n in notes), notes
    dest = tmp_path / "dest"
    notes = copy_submission(folder, dest, valid, {"nb": {}})
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*")) == ["data", "data/mine.txt", "nb.ipynb"]
    assert notes == ["refused (links are never followed, only regular files are copied): folder (a symbolic link), "
                     "linked.ipynb (a symbolic link), pipe (a FIFO), data/stolen.txt (a symbolic link)"]
    before = submission_digest(student)
    secret.write_text("changed")
    assert submission_digest(student) == before  # a link's target is never read
    with pytest.raises(IntakeError, match="symbolic link"):
        (tmp_path / "class" / "linked_student").symlink_to(student)
        inspect_submission(tmp_path / "class" / "linked_student", {"nb.ipynb"})

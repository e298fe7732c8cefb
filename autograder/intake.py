"""Intake: read a class's submission folders without trusting them, and copy what is graded.

A submission folder is untrusted input. Intake never follows a symbolic link (a link could point at
the master notebooks, the reference, the gradebook or any file of the machine), copies regular files
only, and says what it refused. Student folder names become nbgrader ids only when they are safe
(nbgrader treats ids as glob patterns); other names are mapped to a safe id, reported. Notebooks are
normalized on the way in: every cell gets a unique id (nbformat 4.4 notebooks have none), and the
nbgrader metadata of every cell is restored from the gradebook's master cells.
"""
import hashlib
import os
import re
import shutil
import stat
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook

from autograder.config import ASSIGNMENT
from autograder.gradebook_lock import GradebookLock

__all__ = ["IntakeError", "nbgrader_ids", "inspect_submission", "copy_submission", "submission_digest",
           "master_cells", "normalize_notebook", "stage_submission"]

# Letters, digits and . _ @ + - (e-mail addresses pass), no leading dot, no glob characters, at most 64.
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")
CELL_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # nbformat 4.5's cell id pattern
SKIPPED = {".ipynb_checkpoints", "__pycache__"}  # editor and interpreter caches, never graded
NOTE_NAMES = 6  # refused entries named in a note; the rest are counted


class IntakeError(ValueError):
    """A student folder that cannot be graded; the message says what is wrong and how to fix it."""


def nbgrader_ids(names: list[str]) -> dict[str, str]:
    """{folder name: nbgrader id}: a safe name is its own id, any other is mapped to a safe, stable one."""
    ids = {name: name for name in names if SAFE_ID.fullmatch(name)}
    taken = set(ids.values())
    for name in sorted(set(names) - set(ids)):
        base = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_-")[:40] or "student"
        digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()
        for length in (8, 16, 64):
            candidate = f"{base}-{digest[:length]}"
            if candidate not in taken:
                break
        ids[name] = candidate
        taken.add(candidate)
    return ids


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _walk(folder: Path) -> tuple[list[Path], list[str]]:
    """Regular files under `folder` (relative paths, sorted) and the entries refused, never following a link."""
    files, refused = [], []
    for directory, dirnames, filenames in os.walk(folder, followlinks=False):
        here = Path(directory)
        for name in sorted(dirnames):
            if name in SKIPPED:
                dirnames.remove(name)
            elif (here / name).is_symlink():
                refused.append(f"{(here / name).relative_to(folder)} (a symbolic link)")
                dirnames.remove(name)
        for name in sorted(filenames):
            path = here / name
            if name.endswith(".pyc"):
                continue
            mode = os.lstat(path).st_mode
            if stat.S_ISREG(mode):
                files.append(path.relative_to(folder))
            else:
                refused.append(f"{path.relative_to(folder)} ({_kind(mode)})")
    return sorted(files), refused


def _read(path: Path) -> bytes:
    """The bytes of a regular file, refusing a link swapped in after the walk."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise IntakeError(f"{path} is not a regular file")
        return f.read()


def _refused_note(refused: list[str]) -> str:
    shown = ", ".join(refused[:NOTE_NAMES]) + (f" and {len(refused) - NOTE_NAMES} more" if len(refused) > NOTE_NAMES else "")
    return f"refused (links are never followed, only regular files are copied): {shown}"


def submission_digest(student_dir: Path) -> str:
    """A hash of the regular files of a student folder (links and other entries by name only)."""
    h = hashlib.sha256()
    if not stat.S_ISDIR(os.lstat(student_dir).st_mode):
        return ""
    files, refused = _walk(student_dir)
    for rel in files:
        h.update(str(rel).encode("utf-8", "surrogateescape") + b"\0" + _read(student_dir / rel) + b"\0")
    for entry in refused:
        h.update(entry.encode("utf-8", "surrogateescape") + b"\0")
    return h.hexdigest()


def inspect_submission(student_dir: Path, expected: set[str]) -> tuple[Path, set[str], list[str]]:
    """Where a student's notebooks are, which of them to grade, and notes on the rest.

    Args:
        student_dir: the student's folder, holding the notebooks or an `<assignment>/` folder of them.
        expected: file names of the assignment's notebooks.

    Returns (folder, names of the valid assignment notebooks, notes). Raises IntakeError when there is
    nothing to grade, with a message saying what was expected.
    """
    name = student_dir.name
    mode = os.lstat(student_dir).st_mode
    if stat.S_ISLNK(mode):
        raise IntakeError(f"{name} is a symbolic link, which intake never follows; copy the student's files into a real folder")
    if not stat.S_ISDIR(mode):
        raise IntakeError(f"{name} is a file, not a student folder; expected {student_dir}/<notebook>.ipynb")
    nested = student_dir / ASSIGNMENT
    if nested.is_symlink():
        raise IntakeError(f"{name}/{ASSIGNMENT} is a symbolic link, which intake never follows; "
                          f"copy the student's notebooks into a real folder")
    folder = nested if nested.is_dir() else student_dir
    entries = {e.name: e for e in os.scandir(folder)}
    notebooks = sorted(n for n in entries if n.endswith(".ipynb"))
    if folder is student_dir and not notebooks:
        others = sorted(e.name for e in entries.values() if e.is_dir(follow_symlinks=False)
                        and any(p.name.endswith(".ipynb") for p in os.scandir(e.path)))
        if others:
            raise IntakeError(f"{name}: the notebooks are in {others[0]!r}, expected the assignment {ASSIGNMENT!r} "
                              f"(wrong assignment?); rename the folder to {ASSIGNMENT} to grade it")
    if not notebooks:
        raise IntakeError(f"{name}: no notebook (*.ipynb) found in {folder}; "
                          f"expected {student_dir}/<notebook>.ipynb or {nested}/<notebook>.ipynb")
    valid, notes = set(), []
    for notebook in notebooks:
        if notebook not in expected:
            notes.append(f"{notebook} is not part of the assignment (ignored)")
            continue
        if not entries[notebook].is_file(follow_symlinks=False):
            kind = _kind(os.lstat(entries[notebook].path).st_mode)
            notes.append(f"{notebook} is {kind}, which intake never follows: graded as missing, 0 points")
            continue
        try:
            nbformat.validate(nbformat.reads(_read(folder / notebook).decode("utf-8"), as_version=4))
        except Exception as e:
            notes.append(f"{notebook} is not a valid notebook ({type(e).__name__}): graded as missing, 0 points")
            continue
        valid.add(notebook)
    missing = sorted(expected - set(notebooks))
    if missing:
        notes.append(f"missing (0 points): {', '.join(missing)}")
    if not valid:
        raise IntakeError(f"{name}: no valid notebook of the assignment ({'; '.join(notes)})")
    return folder, valid, notes


def master_cells(db_url: str, course_id: str) -> dict[str, dict[str, dict]]:
    """{notebook stem: {grade id: the nbgrader metadata the release gave that cell}}, from the gradebook."""
    masters = {}
    with Gradebook(db_url, course_id) as gb:
        for notebook in gb.find_assignment(ASSIGNMENT).notebooks:
            cells = {c.name: {"grade": False, "grade_id": c.name, "locked": c.locked, "schema_version": 3,
                              "solution": False, "task": False, "cell_type": c.cell_type, "checksum": c.checksum}
                     for c in notebook.source_cells}
            for cell in notebook.grade_cells:
                cells[cell.name].update(grade=True, points=cell.max_score)
            for cell in notebook.solution_cells:
                cells[cell.name].update(solution=True)
            for cell in notebook.task_cells:
                cells[cell.name].update(task=True, points=cell.max_score)
            masters[notebook.name] = cells
    return masters


FLAGS = ("grade", "solution", "locked", "task", "points")


def normalize_notebook(nb, master: dict[str, dict]) -> tuple[object, list[str]]:
    """A copy of `nb` with unique cell ids and every cell's nbgrader metadata restored from `master`.

    Returns (notebook, what was wrong, one short phrase per tampered cell).
    """
    nb = nbformat.from_dict(nb)
    problems = []
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader")
        if meta is None:
            continue
        meta = meta if isinstance(meta, dict) else {}
        grade_id = meta.get("grade_id") if isinstance(meta.get("grade_id"), str) else None
        if grade_id in master:
            changed = [k for k in FLAGS if k in master[grade_id] or k in meta
                       if meta.get(k, False) != master[grade_id].get(k, False)]
            if changed:
                problems.append(f"{grade_id} ({', '.join(f'{k}: {meta.get(k)!r}' for k in changed)})")
            cell.metadata["nbgrader"] = dict(master[grade_id])
        else:
            if any(meta.get(k) for k in ("grade", "solution", "locked", "task")):
                problems.append(f"{grade_id or 'a cell without an id'} (not a cell of the assignment: ungraded)")
            del cell.metadata["nbgrader"]
    _unique_cell_ids(nb)
    return nb, problems


def _unique_cell_ids(nb) -> None:
    """Give every cell a unique nbformat 4.5 id (Colab and older Jupyter save 4.4 notebooks without)."""
    nb.nbformat, nb.nbformat_minor = 4, max(5, nb.get("nbformat_minor", 0))
    kept = [c.get("id") if isinstance(c.get("id"), str) and CELL_ID.fullmatch(c.get("id")) else None for c in nb.cells]
    seen, taken = set(), set(filter(None, kept))
    for index, (cell, cell_id) in enumerate(zip(nb.cells, kept)):
        if cell_id is None or cell_id in seen:
            cell_id, n = f"cell-{index}", index
            while cell_id in taken:
                n += len(nb.cells)
                cell_id = f"cell-{n}"
            taken.add(cell_id)
        cell["id"] = cell_id
        seen.add(cell_id)


def copy_submission(folder: Path, dest: Path, notebooks: set[str] | None = None,
                    masters: dict[str, dict[str, dict]] | None = None) -> list[str]:
    """Copy a submission into `dest` (nbgrader's submitted/<id>/<assignment>): regular files only, and only
    the given notebooks of the top folder, normalized against `masters`. Returns notes for the table."""
    if dest.exists():
        shutil.rmtree(dest)
    files, refused = _walk(folder)
    tampered = []
    for rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        data = _read(folder / rel)
        if len(rel.parts) == 1 and rel.suffix == ".ipynb":
            if notebooks is not None and rel.name not in notebooks:
                continue
            if masters is not None:
                nb, problems = normalize_notebook(nbformat.reads(data.decode("utf-8"), as_version=4),
                                                  masters.get(rel.stem, {}))
                tampered += [f"{rel.stem}: {p}" for p in problems]
                nbformat.write(nb, target)
                continue
        target.write_bytes(data)
    notes = [_refused_note(refused)] if refused else []
    if tampered:
        notes.append("nbgrader metadata changed, graded as the master's cells: " + "; ".join(tampered))
    return notes


def stage_submission(student_dir: Path, student: str, grading_root: Path, masters: dict[str, dict[str, dict]],
                     lock: GradebookLock) -> tuple[list[str], list[str]]:
    """Check a student's folder and copy the notebooks to grade into the grading root's submitted/.

    Args:
        student_dir: the student's folder in the class's submissions.
        student: the nbgrader id it is graded under (`nbgrader_ids`).
        grading_root: the gradebook's folder.
        masters: the master notebooks' cells (`master_cells`).
        lock: the gradebook's lock, held while the grading root changes.

    Returns (stems of the notebooks to grade, notes). Raises IntakeError when there is nothing to grade.
    """
    expected = {f"{stem}.ipynb" for stem in masters}
    folder, notebooks, notes = inspect_submission(student_dir, expected)
    if student != student_dir.name:
        notes = [f"graded as nbgrader id {student!r} (the folder name is not a safe nbgrader id: letters, digits "
                 f"and . _ @ + - only, at most 64, starting with a letter or digit)", *notes]
    with lock.held():
        notes += copy_submission(folder, grading_root / "submitted" / student / ASSIGNMENT, notebooks, masters)
        # Graded one notebook at a time, nbgrader replaces only those: clear what an earlier run left.
        for stage in ("autograded", "feedback"):
            shutil.rmtree(grading_root / stage / student / ASSIGNMENT, ignore_errors=True)
    return sorted(Path(n).stem for n in notebooks), notes

"""The LMS in and out: intake of Canvas's and Moodle's bulk downloads, export of their gradebook imports.

Intake turns a bulk download (a folder or the zip the LMS gives) into the folder `grade` reads, one
folder per student, and says which files it could not map. The file names carry the student's name
and the LMS's id for them:

- Canvas: `<sortable name, lowercased, letters and digits only>_[LATE_]<Canvas user id>_<attachment id>_<file>`
  (a student's re-upload of a file with the same name gets `-1`, `-2` … before the extension);
- Moodle: `<Full Name>_<participant id>_assignsubmission_file_<file>`, or with "download submissions in
  folders" a folder `<Full Name>_<participant id>_assignsubmission_file_/` holding the files.

A roster (CSV, one row per student) maps LMS ids to the course's student ids; without one, a student's
id is made from the name in the file, which works until two students share a name.

Roster columns: `student` (required: the course's id, the folder name `grade` uses and the hub's user
name), `name` ("First Last"), `sortable_name` ("Last, First"), `canvas_id`, `sis_user_id`,
`sis_login_id`, `section`, `moodle_participant`, `id_number`, `email`.

Export writes the total of each graded student in the layouts the LMSs import:

- Canvas's gradebook CSV: the columns `Student, ID, SIS User ID, SIS Login ID, Section` then one
  column per assignment, and a `Points Possible` row (Canvas matches a row by `ID`, then the SIS ids,
  then the name: lib/gradebook_importer.rb in instructure/canvas-lms);
- Moodle's grade import CSV: `First name, Last name, ID number, Email address` then the grade; at
  import, "Map from" `ID number` (or `Email address`) to "useridnumber" (or "useremail").

`python -m autograder.lms intake|export --help` for the command line.
"""
import argparse
import csv
import re
import shutil
import sys
import tempfile
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from autograder.rubric import REGISTRY
from autograder.config import ASSIGNMENT, REPO_ROOT

__all__ = ["LmsError", "LmsFile", "Intake", "lms_column", "read_roster", "parse_name", "intake",
           "canvas_rows", "moodle_rows", "read_grades", "write_rows"]

ROSTER_COLUMNS = ("student", "name", "sortable_name", "canvas_id", "sis_user_id", "sis_login_id", "section",
                  "moodle_participant", "id_number", "email")
CANVAS_HEADER = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
MOODLE_HEADER = ("First name", "Last name", "ID number", "Email address")
ID_COLUMN = {"canvas": "canvas_id", "moodle": "moodle_participant"}

_MOODLE = re.compile(r"^(?P<name>.+)_(?P<id>\d+)_assignsubmission_(?P<plugin>[a-z]+)_(?P<file>.*)$")
_CANVAS = re.compile(r"^(?P<name>[^_]+)_(?P<late>late_)?(?P<id>\d+)_(?P<attachment>\d+)_(?P<file>.+)$", re.IGNORECASE)
_REUPLOAD = re.compile(r"-\d+(?=\.[^.]+$)")


class LmsError(ValueError):
    """Bad input to intake or export, with a message saying how to fix it."""


def lms_column(cell: str) -> str:
    """The LMS gradebook column of a graded cell `<notebook>:<grade id>`: its exercise as its rubric item declares
    it, or, for a written answer (graded by hand, no rubric item), the answer's own column."""
    notebook, grade_id = cell.split(":", 1)
    item = REGISTRY.get(grade_id)
    return f"{notebook}: {item.exercise}" if item is not None else f"{notebook}: {grade_id} (written)"


# ---------------------------------------------------------------- roster

def read_roster(path: Path) -> list[dict[str, str]]:
    """The roster's rows, every known column present (empty when the file lacks it)."""
    path = Path(path)
    if not path.is_file():
        raise LmsError(f"roster {path} does not exist; give a CSV with a 'student' column (see autograder/lms.py)")
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in reader.fieldnames or []]
        if "student" not in header:
            raise LmsError(f"roster {path} has no 'student' column (its columns: {', '.join(header) or 'none'}); "
                           f"the columns it may have: {', '.join(ROSTER_COLUMNS)}")
        rows = [{c: (row.get(c) or "").strip() for c in ROSTER_COLUMNS}
                for row in ({k.strip(): v for k, v in r.items() if k} for r in reader)]
    seen = set()
    for line, row in enumerate(rows, start=2):
        if not row["student"]:
            raise LmsError(f"roster {path}, line {line}: empty 'student'; every row needs the course's student id")
        if row["student"] in seen:
            raise LmsError(f"roster {path}, line {line}: student {row['student']!r} appears twice")
        seen.add(row["student"])
    return rows


def _sortable(row: dict) -> str:
    if row["sortable_name"]:
        return row["sortable_name"]
    first, _, last = row["name"].rpartition(" ")
    return f"{last}, {first}" if first else last


def _name_key(lms: str, name: str) -> str:
    """How names compare: Canvas keeps lowercase letters and digits of the sortable name; Moodle the full name."""
    if lms == "canvas":
        return re.sub(r"[^0-9a-z]", "", name.lower())
    return " ".join(name.split()).casefold()


def _roster_name(lms: str, row: dict) -> str:
    return _name_key(lms, _sortable(row) if lms == "canvas" else row["name"])


# ---------------------------------------------------------------- intake

@dataclass(frozen=True)
class LmsFile:
    """One file of a bulk download, as its name describes it."""
    source: Path      # where it is in the (extracted) download
    shown: str        # its path in the download, for messages
    lms: str          # "canvas" or "moodle"
    name: str         # the student's name as the LMS wrote it
    lms_id: str       # Canvas user id or Moodle participant id
    filename: str     # the student's own file name (path inside a Moodle submission folder)
    order: int = 0    # Canvas attachment id: a later upload has a larger one
    late: bool = False


@dataclass
class Intake:
    """What intake did: student -> files copied (as named in the download), and the files it could not map."""
    mapped: dict[str, list[str]] = field(default_factory=dict)
    unmapped: list[tuple[str, str]] = field(default_factory=list)  # (file in the download, why)
    notes: dict[str, list[str]] = field(default_factory=dict)      # student -> late, matched by name, ...
    absent: list[str] = field(default_factory=list)                # roster students without a file

    def report(self) -> str:
        lines = [f"{len(self.mapped)} students, {sum(map(len, self.mapped.values()))} files mapped"]
        for student, files in sorted(self.mapped.items()):
            notes = "; ".join(self.notes.get(student, []))
            lines.append(f"  {student}: {', '.join(files)}" + (f"  ({notes})" if notes else ""))
        if self.unmapped:
            lines.append(f"{len(self.unmapped)} files NOT mapped (not graded):")
            lines += [f"  {shown}: {why}" for shown, why in self.unmapped]
        if self.absent:
            lines.append(f"roster students without a file: {', '.join(self.absent)}")
        return "\n".join(lines)


def parse_name(parts: tuple[str, ...], source: Path) -> LmsFile | None:
    """The file described by the first component of its path (in the download) in Canvas's or Moodle's form."""
    shown = "/".join(parts)
    for depth, part in enumerate(parts):
        rest = "/".join(parts[depth + 1:])
        if m := _MOODLE.match(part):
            # Only the file plugin's entries are files the student handed in (not online text).
            filename = "/".join(p for p in (m["file"], rest) if p) if m["plugin"] == "file" else ""
            return LmsFile(source, shown, "moodle", m["name"], m["id"], filename)
        if m := _CANVAS.match(part):
            filename = "/".join(p for p in (m["file"], rest) if p)
            return LmsFile(source, shown, "canvas", m["name"], m["id"], filename, int(m["attachment"]), bool(m["late"]))
    return None


def _files(download: Path) -> list[tuple[tuple[str, ...], Path]]:
    return sorted((p.relative_to(download).parts, p) for p in download.rglob("*") if p.is_file())


def _extract(archive: Path, into: Path) -> list[tuple[str, str]]:
    """Extract a zip, refusing members that would land outside `into`; returns the refused ones."""
    refused = []
    try:
        with zipfile.ZipFile(archive) as z:
            for member in z.infolist():
                name = member.filename
                if member.is_dir():
                    continue
                if name.startswith("/") or ".." in Path(name).parts or "\\" in name:
                    refused.append((name, "unsafe path in the zip (absolute or with '..'): not extracted"))
                    continue
                z.extract(member, into)
    except zipfile.BadZipFile as e:
        raise LmsError(f"{archive} is not a readable zip ({e}); download it again from the LMS") from e
    return refused


def _student_of(f: LmsFile, roster: list[dict] | None, ids_by_name: dict) -> tuple[str | None, str]:
    """(student, note) or (None, why it cannot be mapped)."""
    key = _name_key(f.lms, f.name)
    if roster is None:
        ids = ids_by_name[(f.lms, key)]
        if len(ids) > 1:
            return None, (f"{len(ids)} students are named {f.name!r} (ids {', '.join(sorted(ids))}): "
                          f"give a roster (--roster) with their {ID_COLUMN[f.lms]}")
        slug = re.sub(r"[^0-9a-z]+", "_", key).strip("_")
        return (slug, "") if slug else (None, f"no usable name in {f.name!r}: give a roster (--roster)")
    by_id = [r for r in roster if r[ID_COLUMN[f.lms]] == f.lms_id]
    if by_id:
        return by_id[0]["student"], ""
    by_name = [r for r in roster if _roster_name(f.lms, r) == key]
    if len(by_name) == 1:
        return by_name[0]["student"], f"matched by name: {f.lms} id {f.lms_id} is not in the roster"
    if by_name:
        return None, (f"{f.lms} id {f.lms_id} is not in the roster and the name {f.name!r} matches "
                      f"{', '.join(r['student'] for r in by_name)}: add the id to the roster's {ID_COLUMN[f.lms]}")
    return None, f"{f.lms} id {f.lms_id} ({f.name!r}) is not in the roster: add the student to it"


def intake(download: Path, out: Path, roster: list[dict] | None = None, notebooks: set[str] | None = None) -> Intake:
    """Copy a Canvas or Moodle bulk download (folder or zip) into `out/<student>/<file>`.

    Args:
        download: the folder or zip the LMS gave; never changed.
        out: a new folder (it must not exist or be empty); written whole, or not at all.
        roster: rows of `read_roster`; without it a student's id is made from the name in the file.
        notebooks: the assignment's notebook names, to undo Canvas's `-1` on a re-uploaded file
            (default: the master notebooks).
    """
    download, out = Path(download), Path(out)
    if notebooks is None:
        notebooks = {p.name for p in (REPO_ROOT / "source" / ASSIGNMENT).glob("*.ipynb")}
    if not download.exists():
        raise LmsError(f"download {download} does not exist; give the folder or the zip the LMS gave")
    if out.exists() and any(out.iterdir()):
        raise LmsError(f"{out} is not empty; give a new folder for the submissions (nothing is overwritten)")
    result = Intake()
    with tempfile.TemporaryDirectory(prefix="lms-intake-") as tmp:
        if download.is_file():
            root = Path(tmp) / "download"
            result.unmapped += _extract(download, root)
        else:
            root = download
        parsed = []
        for parts, path in _files(root):
            f = parse_name(parts, path)
            if f is None:
                result.unmapped.append(("/".join(parts), "the name is in neither Canvas's form "
                                        "(name_userid_attachmentid_file) nor Moodle's (Full Name_id_assignsubmission_file_…)"))
            elif not f.filename:
                result.unmapped.append((f.shown, "not a file submission (online text or another Moodle plugin)"))
            else:
                parsed.append(f)
        ids_by_name = defaultdict(set)
        for f in parsed:
            ids_by_name[(f.lms, _name_key(f.lms, f.name))].add(f.lms_id)
        chosen: dict[tuple[str, str], LmsFile] = {}
        for f in parsed:
            student, note = _student_of(f, roster, ids_by_name)
            if student is None:
                result.unmapped.append((f.shown, note))
                continue
            notes = result.notes.setdefault(student, [])
            for extra in (note, f"late ({f.lms})" if f.late else ""):
                if extra and extra not in notes:
                    notes.append(extra)
            filename = f.filename
            if _REUPLOAD.sub("", filename) in notebooks and filename not in notebooks:
                filename = _REUPLOAD.sub("", filename)
            key = (student, filename)
            if key in chosen:
                older, newer = sorted((chosen[key], f), key=lambda x: (x.order, x.shown))
                result.unmapped.append((older.shown, f"{student} has a later upload of {filename}: {newer.shown}"))
                f = newer
            chosen[key] = f
        staging = Path(tmp) / "out"
        for (student, filename), f in sorted(chosen.items()):
            dest = staging / student / filename
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f.source, dest)
            result.mapped.setdefault(student, []).append(f.shown)
        result.notes = {s: n for s, n in result.notes.items() if n and s in result.mapped}
        if roster is not None:
            result.absent = sorted(r["student"] for r in roster if r["student"] not in result.mapped)
        out.mkdir(parents=True, exist_ok=True)
        if staging.exists():
            for folder in sorted(staging.iterdir()):
                shutil.move(str(folder), out / folder.name)
    return result


# ---------------------------------------------------------------- export

def read_grades(path: Path) -> dict[str, dict[str, str]]:
    """The rows of the grader's `grades.csv` (student, status, total, max_total, cells …) by student."""
    path = Path(path)
    if not path.is_file():
        raise LmsError(f"grades {path} does not exist; run `make grade` first (it writes .grading/grades.csv)")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and not {"student", "status", "total", "max_total"} <= set(rows[0]):
        raise LmsError(f"{path} is not the grader's grades.csv (needs student, status, total, max_total columns)")
    return {r["student"]: r for r in rows}


def _score(grades: dict, student: str) -> str:
    row = grades.get(student)
    return f"{float(row['total']):g}" if row and row["status"] == "graded" else ""


def _max_total(grades: dict) -> str:
    totals = {r["max_total"] for r in grades.values() if r["status"] == "graded"}
    return f"{float(totals.pop()):g}" if len(totals) == 1 else ""


def export_problems(grades: dict, roster: list[dict]) -> list[str]:
    """What an export leaves out or blank: graded students missing from the roster, roster students not graded."""
    known = {r["student"] for r in roster}
    problems = [f"{s}: graded but not in the roster, so not exported; add them to the roster"
                for s in sorted(grades) if s not in known]
    problems += [f"{r['student']}: {grades[r['student']]['status'] if r['student'] in grades else 'no grade'}; "
                 f"exported blank (the LMS keeps its grade)" for r in roster if not _score(grades, r["student"])]
    return problems


def canvas_rows(grades: dict, roster: list[dict], title: str) -> list[list[str]]:
    """Canvas's gradebook import: header, Points Possible row, one row per roster student."""
    lacking = [r["student"] for r in roster if not (r["canvas_id"] or r["sis_user_id"] or r["sis_login_id"])]
    if lacking:
        raise LmsError(f"Canvas matches students by ID or SIS id; the roster gives none for {', '.join(lacking)}: "
                       f"fill its canvas_id (or sis_user_id / sis_login_id) column")
    rows = [[*CANVAS_HEADER, title], ["Points Possible", "", "", "", "", _max_total(grades)]]
    rows += [[_sortable(r), r["canvas_id"], r["sis_user_id"], r["sis_login_id"], r["section"],
              _score(grades, r["student"])] for r in roster]
    return rows


def moodle_rows(grades: dict, roster: list[dict], title: str) -> list[list[str]]:
    """Moodle's grade import: header, one row per roster student, identified by ID number and email."""
    lacking = [r["student"] for r in roster if not (r["id_number"] or r["email"])]
    if lacking:
        raise LmsError(f"Moodle matches students by ID number or email; the roster gives neither for "
                       f"{', '.join(lacking)}: fill its id_number or email column")
    rows = [[*MOODLE_HEADER, title]]
    for r in roster:
        first, _, last = r["name"].rpartition(" ")
        rows.append([first or last, last if first else "", r["id_number"], r["email"], _score(grades, r["student"])])
    return rows


def write_rows(rows: list[list[str]], path: Path) -> None:
    """Write a CSV whole: to a temporary file, then renamed."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    tmp.replace(path)


# ---------------------------------------------------------------- command line

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.lms", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    take = sub.add_parser("intake", help="a Canvas or Moodle bulk download (folder or zip) -> one folder per student")
    take.add_argument("download", type=Path)
    take.add_argument("out", type=Path, help="a new folder; then `make grade SUBMISSIONS=<out>`")
    take.add_argument("--roster", type=Path, help="CSV mapping LMS ids to student ids (see the module's docstring)")
    export = sub.add_parser("export", help="grades.csv -> Canvas and/or Moodle gradebook import CSVs")
    export.add_argument("--roster", type=Path, required=True)
    export.add_argument("--grades", type=Path, default=REPO_ROOT / ".grading" / "grades.csv")
    export.add_argument("--canvas", type=Path, help="write Canvas's gradebook import here")
    export.add_argument("--moodle", type=Path, help="write Moodle's grade import here")
    export.add_argument("--title", default=ASSIGNMENT,
                        help="the LMS's assignment name (Canvas: 'Name (id)' matches an existing assignment)")
    args = parser.parse_args(argv)
    try:
        roster = read_roster(args.roster) if args.roster else None
        if args.command == "intake":
            result = intake(args.download, args.out, roster)
            print(result.report())
            print(f"\nsubmissions: {args.out}  (grade them: make grade SUBMISSIONS={args.out})")
            return 1 if result.unmapped else 0
        if not (args.canvas or args.moodle):
            raise LmsError("export needs --canvas FILE and/or --moodle FILE")
        grades = read_grades(args.grades)
        for path, make in ((args.canvas, canvas_rows), (args.moodle, moodle_rows)):
            if path:
                write_rows(make(grades, roster, args.title), path)
                print(f"wrote {path}")
        problems = export_problems(grades, roster)
        for line in problems:
            print(f"  {line}")
        return 1 if problems else 0
    except LmsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

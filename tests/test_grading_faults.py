"""Faults while grading a class: bad input in the submissions folder, late work, a grader killed
mid-class (SIGKILL) and rerun, and what the feedback shows. Uses the small one-notebook assignment of
the attack corpus so each submission grades in seconds."""
import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import nbformat
import pytest

from autograder.config import ASSIGNMENT, REPO_ROOT
from autograder.gradebook import make_api
from autograder.grading import grade_class
from autograder.reports import write_lms_csv, write_nbgrader_csv
from autograder.golden.build import function_source
from autograder.golden.attacks import target
from autograder.golden.attacks.target import NOTEBOOK, WRONG_STATS
from autograder.golden.mutants import normalization as normalization_mutants

pytestmark = pytest.mark.slow
SANDBOX = {"cell_timeout": 20, "notebook_timeout": 120}
DUE = datetime(2026, 11, 1, 12, 0, 0)
# Right on the visible check's single image, wrong on the grader's batches: the hidden check fails.
FIRST_IMAGE_ONLY = ("def channel_stats(x):\n    per_channel = x[0].reshape(x.shape[1], -1)\n"
                    "    mean = per_channel.mean(dim=1)\n"
                    "    return mean, (per_channel - mean[:, None]).pow(2).mean(dim=1).sqrt()")


def _checksums(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def assignment(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    target.write_source(root / "source")
    api = make_api(root / "generate", release_root=root / "release", source_root=root / "source")
    assert api.generate_assignment(ASSIGNMENT, force=True, create=True)["success"]
    return root


def _write(assignment: Path, folder: Path, fills: dict[str, str] | None = None, name: str = f"{NOTEBOOK}.ipynb"):
    solutions = target.reference_solutions(assignment / "source")
    nb = nbformat.read(assignment / "release" / ASSIGNMENT / f"{NOTEBOOK}.ipynb", as_version=4)
    answers = {**solutions, **(fills or {})}
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / name)


@pytest.fixture(scope="module")
def bad_class(assignment):
    subs = assignment / "bad-class"
    _write(assignment, subs / "good")
    _write(assignment, subs / "wrong", {"channel_stats_solution": FIRST_IMAGE_ONLY})
    _write(assignment, subs / "late" / ASSIGNMENT)  # nbgrader's own layout, with its timestamp file
    (subs / "late" / ASSIGNMENT / "timestamp.txt").write_text("2026-11-02 12:00:00.000000 UTC")
    _write(assignment, subs / "on_time" / ASSIGNMENT)
    (subs / "on_time" / ASSIGNMENT / "timestamp.txt").write_text("2026-11-01 11:00:00.000000 UTC")
    (subs / "stray.txt").write_text("not a student")
    (subs / "empty").mkdir()
    (subs / "not_json").mkdir()
    (subs / "not_json" / f"{NOTEBOOK}.ipynb").write_text("this is not JSON {")
    _write(assignment, subs / "wrong_assignment" / "homework_3")
    _write(assignment, subs / "missing_notebook", name="scratch.ipynb")
    grading = assignment / "bad-grading"
    results = {r.student: r for r in grade_class(subs, grading, jobs=2, source_root=assignment / "source",
                                                 sandbox=SANDBOX, due=DUE, late_policy="zero")}
    return grading, results


@pytest.mark.parametrize("student, words", [
    ("stray.txt", "is a file, not a student folder"),
    ("empty", "no notebook"),
    ("not_json", "is not a valid notebook"),
    ("wrong_assignment", "'homework_3', expected the assignment 'sizing_and_tta'"),
    ("missing_notebook", "missing (0 points): 00_attack_target.ipynb"),
])
def test_bad_input_gets_a_clear_message(bad_class, student, words):
    _, results = bad_class
    assert results[student].status.startswith("not graded"), results[student]
    assert words in results[student].status, results[student].status


def test_the_rest_of_the_class_is_graded(bad_class):
    _, results = bad_class
    assert results["good"].status == "graded" and results["good"].total == 6
    assert results["on_time"].status == "graded" and results["on_time"].total == 6
    assert results["wrong"].status == "graded" and results["wrong"].total == 3
    assert not any("late" in n for n in results["on_time"].notes)


def test_late_submission_follows_the_late_policy(bad_class):
    _, results = bad_class
    late = results["late"]
    assert late.status == "graded"
    assert any(n.startswith("late by 24.0 h") and "late policy: zero" in n for n in late.notes), late.notes
    assert late.total == 0


def test_exports(bad_class, tmp_path):
    grading, results = bad_class
    write_lms_csv(list(results.values()), tmp_path / "lms.csv")
    rows = (tmp_path / "lms.csv").read_text().splitlines()
    assert rows[0].split(",")[:3] == ["student", f"{NOTEBOOK}: channel_stats", f"{NOTEBOOK}: normalize"]
    assert any(r.startswith("wrong,0.0,3.0,3.0,6.0,graded") for r in rows), rows
    write_nbgrader_csv(grading, tmp_path / "nbgrader.csv")
    text = (tmp_path / "nbgrader.csv").read_text()
    assert text.startswith("assignment,duedate,timestamp,student_id") and "wrong" in text


def test_feedback_shows_the_failing_input_but_no_hidden_tests_or_reference(bad_class):
    grading, _ = bad_class
    html = (grading / "feedback" / "wrong" / ASSIGNMENT / f"{NOTEBOOK}.html").read_text()
    assert "✘ with x: float32 tensor of shape [" in html and "GradingFailure" not in html
    assert ", mean: expected [" in html and "received [" in html
    reference_line = "per_channel = x.transpose(0, 1).reshape(x.shape[1], -1)"
    assert reference_line in target.reference_solutions(grading.parent / "source")["channel_stats_solution"]
    reference_module = (REPO_ROOT / "autograder" / "reference" / "normalization.py").read_text()
    for secret in ("BEGIN HIDDEN TESTS", "record(", "autograder.reference", reference_line,
                   *[line.strip() for line in reference_module.splitlines() if line.strip().startswith("return")][:3]):
        assert secret not in html, secret


# ---------------------------------------------------------------- the grader killed mid-class
def _cli(subs: Path, grading: Path, source: Path, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "autograder.cli", "grade", str(subs), "--grading-root", str(grading),
                             "--source", str(source), "--cell-timeout", "20", "--no-feedback"],
                            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def test_killed_grader_resumes_without_losing_or_duplicating_grades(assignment):
    subs, grading = assignment / "kill-class", assignment / "kill-grading"
    for student in ("ann", "bob", "cat"):
        _write(assignment, subs / student)
    _write(assignment, subs / "dan", {"channel_stats_solution": WRONG_STATS})
    before = _checksums(subs)
    first = _cli(subs, grading, assignment / "source", start_new_session=True)
    deadline = time.monotonic() + 400
    while not list((grading / "status").glob("*.json")) and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.2)
    assert first.poll() is None, f"the grader finished before it could be killed: {first.stdout.read()}"
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    graded_before_kill = {p.stem for p in (grading / "status").glob("*.json")}
    assert 1 <= len(graded_before_kill) < 4
    second = _cli(subs, grading, assignment / "source")
    out, _ = second.communicate(timeout=600)
    assert second.returncode == 0, out
    assert "4 of 4 submissions graded" in out
    assert out.count("kept from an earlier run") == len(graded_before_kill), out
    assert _checksums(subs) == before
    con = sqlite3.connect(grading / "gradebook.db")
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        counts = dict(con.execute("SELECT student_id, COUNT(*) FROM submitted_assignment GROUP BY student_id"))
        assert counts == {"ann": 1, "bob": 1, "cat": 1, "dan": 1}
        assert con.execute("SELECT COUNT(*) FROM grade").fetchone()[0] == 4 * 4
    finally:
        con.close()
    scores = {line.split()[0]: line.split()[1] for line in out.splitlines() if line.split()[:1] in (["ann"], ["bob"], ["cat"], ["dan"])}
    assert scores == {"ann": "6", "bob": "6", "cat": "6", "dan": "3"}, out


# ---------------------------------------------------------------- intake: links, ids, old notebooks, subclasses
# Returns fastai tensor subclasses (as fastai's own transforms do, keeping the dtype): values are graded, not types.
SUBCLASS_FILLS = {
    "channel_stats_solution_suffix": ("\nfrom fastai.torch_core import TensorBase, TensorImage\n_plain_stats = channel_stats\n"
                                      "def channel_stats(x):\n    return tuple(t.as_subclass(TensorBase) for t in _plain_stats(x))\n"),
    "normalize_solution_suffix": ("\n_plain_normalize = normalize\n"
                                  "def normalize(x, mean, std):\n    return _plain_normalize(x, mean, std).as_subclass(TensorImage)\n"),
}


def _entries(folder: Path) -> dict[str, str]:
    """Every entry under `folder` without following links: a file's hash, a link's target, a FIFO's kind."""
    state = {}
    for directory, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            path = Path(directory) / name
            if path.is_symlink():
                state[str(path.relative_to(folder))] = f"link to {os.readlink(path)}"
            elif path.is_file():
                state[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
            elif not path.is_dir():
                state[str(path.relative_to(folder))] = "special"
    return state


def _old_format(path: Path) -> None:
    """Rewrite a notebook as nbformat 4.4 (no cell ids), as Colab and older Jupyter save it."""
    import json
    data = json.loads(path.read_text())
    data["nbformat_minor"] = 4
    for cell in data["cells"]:
        cell.pop("id", None)
    path.write_text(json.dumps(data))


@pytest.fixture(scope="module")
def intake_class(assignment):
    subs, grading = assignment / "intake-class", assignment / "intake-grading"
    master = assignment / "source" / ASSIGNMENT
    _write(assignment, subs / "good")
    # links to the master notebooks: a notebook, the assignment folder, the whole student folder
    (subs / "link_notebook").mkdir(parents=True)
    (subs / "link_notebook" / f"{NOTEBOOK}.ipynb").symlink_to(master / f"{NOTEBOOK}.ipynb")
    (subs / "link_folder").mkdir()
    (subs / "link_folder" / ASSIGNMENT).symlink_to(master)
    (subs / "link_student").symlink_to(master)
    # an honest notebook beside links to the reference, the trusted checks, the gradebook and /etc/passwd
    _write(assignment, subs / "link_files")
    for name, target_path in {"reference.py": REPO_ROOT / "autograder" / "reference" / "normalization.py",
                              "checks.py": REPO_ROOT / "autograder" / "checks" / "normalization.py",
                              "gradebook.db": grading / "gradebook.db", "passwd": Path("/etc/passwd"),
                              "autograder": REPO_ROOT / "autograder"}.items():
        (subs / "link_files" / name).symlink_to(target_path)
    os.mkfifo(subs / "link_files" / "pipe")
    (subs / "link_files" / "notes.txt").write_text("my own notes")
    # ids nbgrader would glob or hide
    _write(assignment, subs / ".hidden")
    _write(assignment, subs / "jane[1]")
    _write(assignment, subs / "*", {"channel_stats_solution": WRONG_STATS})
    # nbformat 4.4, with an output of its own in an ungraded cell
    solutions = target.reference_solutions(assignment / "source")
    _write(assignment, subs / "old_format", {"channel_stats_solution": solutions["channel_stats_solution"] + "\nprint('stats defined')"})
    _old_format(subs / "old_format" / f"{NOTEBOOK}.ipynb")
    _write(assignment, subs / "subclass", {
        "channel_stats_solution": solutions["channel_stats_solution"] + SUBCLASS_FILLS["channel_stats_solution_suffix"],
        "normalize_solution": solutions["normalize_solution"] + SUBCLASS_FILLS["normalize_solution_suffix"]})
    # a normalize that guesses the channel axis by its size: only images with a side equal to C catch it
    _write(assignment, subs / "guesses_axis", {"normalize_solution": function_source(
        normalization_mutants.normalize_guesses_channel_axis, "normalize")})
    # an honest student whose notebook's metadata was changed (a test cell ungraded, a graded cell added)
    _write(assignment, subs / "tampered")
    nb = nbformat.read(subs / "tampered" / f"{NOTEBOOK}.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "normalize_values":
            cell.metadata.nbgrader.update(grade=False, points=0)
    nb.cells.append(nbformat.v4.new_code_cell("print('bonus')", metadata={"nbgrader": {
        "grade": True, "grade_id": "bonus", "locked": True, "points": 100, "schema_version": 3, "solution": False}}))
    nbformat.write(nb, subs / "tampered" / f"{NOTEBOOK}.ipynb")
    before = _entries(subs)
    results = {r.student: r for r in grade_class(subs, grading, jobs=2, source_root=assignment / "source",
                                                 sandbox=SANDBOX)}
    return {"subs": subs, "grading": grading, "results": results, "before": before}


@pytest.mark.parametrize("student", ["link_notebook", "link_folder", "link_student"])
def test_a_link_to_the_master_is_refused(intake_class, student):
    result = intake_class["results"][student]
    assert result.status.startswith("not graded") and "symbolic link" in result.status, result.status
    assert not (intake_class["grading"] / "submitted" / student).exists()


def test_linked_files_are_refused_and_named(intake_class):
    result, grading = intake_class["results"]["link_files"], intake_class["grading"]
    assert result.status == "graded" and result.total == 6, result
    note = next(n for n in result.notes if n.startswith("refused"))
    for name in ("reference.py (a symbolic link)", "checks.py", "gradebook.db", "passwd", "autograder", "pipe (a FIFO)"):
        assert name in note, note
    copied = {p.relative_to(grading) for stage in ("submitted", "autograded", "feedback")
              for p in (grading / stage / "link_files").rglob("*")}
    assert copied and all(not (grading / p).is_symlink() for p in copied)
    names = {p.name for p in copied}
    assert "notes.txt" in names and not names & {"reference.py", "checks.py", "gradebook.db", "passwd", "pipe", "autograder"}
    assert not any("root:x:0:0" in (grading / p).read_text(errors="replace") for p in copied if (grading / p).is_file())


def test_every_folder_is_graded_under_a_safe_id(intake_class):
    results, grading = intake_class["results"], intake_class["grading"]
    assert set(results) == {p.name for p in intake_class["subs"].iterdir()}  # none vanished, ".hidden" included
    for student, total in ((".hidden", 6), ("jane[1]", 6), ("*", 3)):
        result = results[student]
        assert result.status == "graded" and result.total == total, (student, result)
        mapped = next(n for n in result.notes if n.startswith("graded as nbgrader id"))
        assert (grading / "feedback" / mapped.split("'")[1] / ASSIGNMENT / f"{NOTEBOOK}.html").exists()
    # "*" graded itself only: every other student was graded once, with their own scores
    con = sqlite3.connect(grading / "gradebook.db")
    try:
        counts = dict(con.execute("SELECT student_id, COUNT(*) FROM submitted_assignment GROUP BY student_id"))
    finally:
        con.close()
    assert set(counts.values()) == {1} and len(counts) == sum(r.status == "graded" for r in results.values())
    assert results["good"].total == 6


def test_an_nbformat_4_4_notebook_shows_each_cell_its_own_output(intake_class):
    result, grading = intake_class["results"]["old_format"], intake_class["grading"]
    assert result.status == "graded" and result.total == 6, result
    nb = nbformat.read(grading / "autograded" / "old_format" / ASSIGNMENT / f"{NOTEBOOK}.ipynb", as_version=4)
    shown = {c.metadata.get("nbgrader", {}).get("grade_id", f"cell {i}"): "".join(o.get("text", "") for o in c.outputs)
             for i, c in enumerate(nb.cells) if c.cell_type == "code"}
    assert shown["channel_stats_solution"] == "stats defined\n", shown
    assert shown["cell 0"] == "" and shown["normalize_solution"] == "", shown
    html = (grading / "feedback" / "old_format" / ASSIGNMENT / f"{NOTEBOOK}.html").read_text()
    assert html.count("stats defined") == 2  # the source line and its one output


def test_a_channel_axis_guess_loses_the_values_check(intake_class):
    result = intake_class["results"]["guesses_axis"]
    scores = {k.split(":", 1)[1]: v for k, v in result.scores.items()}
    assert result.status == "graded" and scores["normalize_values"] == 0 and result.total == 4, result


def test_tensor_subclasses_are_graded_by_value(intake_class):
    result = intake_class["results"]["subclass"]
    assert result.status == "graded" and result.total == 6, result


def test_tampered_metadata_is_restored_from_the_master(intake_class):
    result = intake_class["results"]["tampered"]
    assert result.status == "graded" and (result.total, result.max_total) == (6, 6), result
    tampered = [n for n in result.notes if n.startswith("nbgrader metadata changed")]
    assert len(tampered) == 1, result.notes
    assert "normalize_values (grade: False, points: 0)" in tampered[0] and "bonus (not a cell of the assignment" in tampered[0]


def test_intake_changes_no_submission(intake_class):
    assert _entries(intake_class["subs"]) == intake_class["before"]


def test_a_recording_bomb_leaves_a_serial_class_complete(assignment):
    """At --jobs 1 the judge runs in the grader's own process: a zip bomb must cost the offender only."""
    from autograder.golden.attacks.target import ATTACKS
    subs = assignment / "bomb-class"
    _write(assignment, subs / "good")
    _write(assignment, subs / "bomber", {k: v.format() for k, v in ATTACKS["recording_bomb"]["fills"].items()})
    results = {r.student: r for r in grade_class(subs, assignment / "bomb-grading", jobs=1,
                                                 source_root=assignment / "source", sandbox=SANDBOX, feedback=False)}
    assert results["good"].status == "graded" and results["good"].total == 6
    assert results["bomber"].status == "graded" and results["bomber"].total == 3, results["bomber"]

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
from autograder.grading import grade_class, make_api, write_lms_csv, write_nbgrader_csv
from tests.submissions.attacks import target
from tests.submissions.attacks.target import NOTEBOOK, WRONG_STATS

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

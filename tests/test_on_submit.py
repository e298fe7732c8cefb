"""Grading on submit: every (student, timestamp) in the exchange graded once, across restarts and kills.

A one-notebook course (01_imagenette) is released to a private exchange; students submit with
nbgrader's own `submit`; the service (`python -m autograder.on_submit`) grades in the sandbox and
releases feedback, which nbgrader's `fetch_feedback` then finds for the submission.
"""
import json
import os
import subprocess
import sys
import time

import pytest

from autograder.config import ASSIGNMENT, COURSE_ID, REPO_ROOT
from autograder.gradebook import make_api
from autograder.on_submit import Ledger, inbound_submissions
from tests.browser import stop_group
from autograder.golden.build import write_submission

pytestmark = [pytest.mark.slow, pytest.mark.e2e]
NOTEBOOK = "01_imagenette"


def nbgrader(*args, cwd, exchange):
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args, "--course", COURSE_ID,
                           f"--Exchange.root={exchange}"], cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def submit(tmp_path, exchange, student, reference):
    work = tmp_path / "students" / student
    write_submission(work / ASSIGNMENT, reference=reference, notebooks=[NOTEBOOK])
    time.sleep(0.01)  # timestamps of two submissions differ
    nbgrader("submit", ASSIGNMENT, "--student", student, cwd=work, exchange=exchange)
    return work


def service(course, exchange, *extra):
    env = {**os.environ, "WORKBOOK_FAST": "1"}
    return [sys.executable, "-m", "autograder.on_submit", "--course", str(course), "--exchange", str(exchange),
            *extra], env


@pytest.fixture
def course(tmp_path):
    """A released one-notebook course and its exchange."""
    course, exchange = tmp_path / "course", tmp_path / "exchange"
    (course / "source" / ASSIGNMENT).mkdir(parents=True)
    exchange.mkdir()
    source = REPO_ROOT / "source" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    (course / "source" / ASSIGNMENT / source.name).write_bytes(source.read_bytes())
    api = make_api(course, source_root=course / "source", release_root=course / "release")
    assert api.generate_assignment(ASSIGNMENT, force=True, create=True)["success"]
    nbgrader("release_assignment", ASSIGNMENT, f"--CourseDirectory.root={course}",
             "--CourseDirectory.release_directory=release", cwd=course, exchange=exchange)
    return course, exchange


def test_each_submission_graded_once_across_restarts_and_kills(course, tmp_path):
    course, exchange = course
    inbound = exchange / COURSE_ID / "inbound"
    ann = submit(tmp_path, exchange, "ann", reference=True)
    submit(tmp_path, exchange, "bo", reference=False)

    cmd, env = service(course, exchange, "--once")
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stderr[-3000:]
    lines = first.stdout.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("ann (") and lines[1].startswith("bo ("), first.stdout
    assert "3/6, feedback released" in lines[0] and "0/6, feedback released" in lines[1], lines
    # The feedback is the submission's own: nbgrader's fetch_feedback finds it for ann.
    nbgrader("fetch_feedback", ASSIGNMENT, "--student", "ann", cwd=ann, exchange=exchange)
    assert list((ann / ASSIGNMENT / "feedback").glob(f"*/{NOTEBOOK}.html"))

    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0 and again.stdout == "", again.stdout  # nothing is graded twice

    # A resubmission is new; the service is killed while grading it, and grades it again after a restart.
    submit(tmp_path, exchange, "ann", reference=False)
    subs = inbound_submissions(inbound)
    assert [s.student for s in subs].count("ann") == 2
    latest = max((s for s in subs if s.student == "ann"), key=lambda s: s.timestamp)
    ledger = Ledger(course / ".on_submit")
    watch_cmd, env = service(course, exchange, "--poll", "0.5")
    proc = subprocess.Popen(watch_cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while ledger.read("started", latest) is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ledger.read("started", latest) is not None, "the service did not start on the resubmission"
        time.sleep(2)  # inside the grading
        assert ledger.read("done", latest) is None
    finally:
        stop_group(proc, timeout=1)  # the service and its kernels, mid-grade
        proc.communicate()
    restart = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert restart.returncode == 0, restart.stderr[-3000:]
    lines = restart.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ann (") and "(attempt 2)" in lines[0], restart.stdout
    assert "0/6, feedback released" in lines[0]
    done = [json.loads(p.read_text()) for p in (course / ".on_submit" / "done").glob("*.json")]
    assert sorted((d["student"], d["total"]) for d in done) == [("ann", 0.0), ("ann", 3.0), ("bo", 0.0)]
    print("grade-on-submit delays (s):", [round(d["delay_s"], 1) for d in done])

"""The course on JupyterHub, round trip in headless Chromium, as its people would do it (`make test-hub`).

hub/setup_course.py creates an instructor and three students as real Unix users (a one-notebook
assignment, 01_imagenette, to keep the machine's load modest) and the hub of hub/jupyterhub_config.py
starts on free ports. The instructor releases the assignment in formgrader; each student logs in,
fetches it, works (one right, one with the seed student's mistakes, one blank), validates and submits;
the instructor collects in formgrader, grades with this project's sandboxed grader (`autograder.cli
grade`, as the instructor's Unix user), grades a written answer by hand in formgrader, generates and
releases feedback; each student fetches their feedback. From the blank student's running kernel, with
the exact paths in hand, another student's submission in the exchange (hub/private_submit.py), their
home, and the instructor's source and collected copies raise PermissionError; the student's own
submission reads. Screenshots of every step go to test-artifacts/hub/. Needs root (it creates and at
the end deletes the users, also when the test fails or gets SIGTERM) and Chromium.
"""
import json
import os
import pwd
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.browser import ensure_chromium, free_port, start_chromium, stop_group
from autograder.golden.build import SEED_ANSWERS
from tests.test_browser import Steps, cell_index, replace_cell_source, solution_cells

pytestmark = [pytest.mark.slow, pytest.mark.e2e]
ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "sizing_and_tta"
NOTEBOOK = "01_imagenette.ipynb"
ARTIFACTS = ROOT / "test-artifacts" / "hub"
PREFIX = "ttatest-"
INSTRUCTOR = f"{PREFIX}instructor"
STUDENTS = {"right": f"{PREFIX}student1", "seeded": f"{PREFIX}student2", "blank": f"{PREFIX}student3"}
WRITTEN = "q1_imagenet_vs_imagenette"
MANUAL_COMMENT = "Clear: the size and the number of classes, and when each fits."
SECONDS = 60_000


def _wait_http(url: str, timeout: float) -> None:
    import urllib.error
    import urllib.request
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=5)  # 200: the hub is behind the proxy
            return
        except OSError:  # refused, or the proxy's 404 before the hub's route is added
            time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer in {timeout:.0f} s")


def _remove_users() -> None:
    for name in [INSTRUCTOR, *STUDENTS.values()]:
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        subprocess.run(["pkill", "-KILL", "-u", name], capture_output=True)  # only this test's users' processes
        subprocess.run(["userdel", "--remove", name], capture_output=True)


STATE_PREFIX = "sizing-and-tta-test-"


def _stop_stale_runs() -> None:
    """What a run killed before its clean-up (SIGKILL, a CI time limit) left: its hub, proxy and Chromium
    (process ids in its state folder, each checked to still be that run's) and the folder itself."""
    for state in Path("/srv").glob(f"{STATE_PREFIX}*"):
        pids = (state / "pids").read_text().split() if (state / "pids").exists() else []
        if (state / "proxy.pid").exists():
            pids += (state / "proxy.pid").read_text().split()
        for pid in filter(str.isdigit, pids):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(state) in cmdline or "jupyterhub_config.py" in cmdline or "configurable-http-proxy" in cmdline:
                try:
                    os.killpg(int(pid), signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="module")
def hub():
    """The course set up on a fresh state folder, the hub started on free ports, Chromium; removed after."""
    if os.environ.get("WORKBOOK_HUB_TEST") != "1":
        pytest.skip("the hub round trip runs in its own target: make test-hub (sets WORKBOOK_HUB_TEST=1)")
    if os.geteuid() != 0 or shutil.which("useradd") is None:
        pytest.skip("the hub test creates Unix users: run it as root on Linux (make test-hub)")
    why = ensure_chromium()
    if why:
        pytest.skip(why)
    if not (ROOT / "hub" / "node_modules" / ".bin" / "configurable-http-proxy").exists():
        pytest.skip("configurable-http-proxy is missing: make hub-deps (npm)")
    playwright = pytest.importorskip("playwright.sync_api")
    started_at = time.monotonic()
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    Path("/srv").mkdir(exist_ok=True)
    _stop_stale_runs()
    _remove_users()
    # Not under /tmp: the grader's sandbox gives each kernel a private /tmp, where the shared Python
    # (in the state folder) would vanish. /srv, as `make hub` uses.
    state = Path(tempfile.mkdtemp(prefix=STATE_PREFIX, dir="/srv"))
    started = []
    # A SIGTERM (a CI job's time limit, `kill`) unwinds through the clean-up below instead of ending at once.
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        setup = subprocess.run([sys.executable, str(ROOT / "hub" / "setup_course.py"), "--students", "3",
                                "--notebooks", NOTEBOOK, "--prefix", PREFIX, "--state", str(state)],
                               capture_output=True, text=True)
        assert setup.returncode == 0, setup.stderr[-3000:]
        course = json.loads((state / "course.json").read_text())
        passwords = dict(line.split(":", 1) for line in (state / "passwords.txt").read_text().split())
        port = free_port()
        env = {**os.environ, "HUB_STATE": str(state), "HUB_PORT": str(port), "HUB_API_PORT": str(free_port()),
               "HUB_PROXY_API_PORT": str(free_port()), "WORKBOOK_FAST": "1"}
        log = open(ARTIFACTS / "jupyterhub.log", "w")
        proc = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", str(ROOT / "hub" / "jupyterhub_config.py")],
                                cwd=state, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        started.append(proc)
        chromium, ws_url = start_chromium(state / "chromium-profile", ARTIFACTS / "chromium.log")
        started.append(chromium)
        (state / "pids").write_text(f"{proc.pid} {chromium.pid}\n")  # for _stop_stale_runs after a SIGKILL
        url = f"http://127.0.0.1:{port}"
        _wait_http(f"{url}/hub/login", 60)
        with playwright.sync_playwright() as pw:
            browser = pw.chromium.connect_over_cdp(ws_url)
            yield {"browser": browser, "url": url, "course": course, "passwords": passwords, "state": state,
                   "start": started_at}
            browser.close()
    finally:
        for proc in reversed(started):
            stop_group(proc)
        _remove_users()
        shutil.rmtree(state, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous)


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


def log_in(hub, user: str):
    """A browser context of the user's own (cookies), logged in through the hub's form; their JupyterLab."""
    from playwright.sync_api import expect
    page = hub["browser"].new_context(viewport={"width": 1400, "height": 900}).new_page()
    page.set_default_timeout(SECONDS)
    page.goto(f"{hub['url']}/hub/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", hub["passwords"][user])
    page.click("input[type=submit], button[type=submit]")
    expect(page.locator(".jp-LabShell, #jp-main-dock-panel").first).to_be_attached(timeout=180_000)
    return page


def formgrader(page, hub, path: str) -> None:
    page.goto(f"{hub['url']}/user/{INSTRUCTOR}/formgrader/{path}")


def formgrader_action(page, column: str) -> str:
    """Click the action of the assignment's row in Manage Assignments; return the result dialog's text."""
    from playwright.sync_api import expect
    row = page.locator("tr", has_text=ASSIGNMENT).first
    row.locator(f"td.{column} a").click()
    dialog = page.locator(".modal:visible").last
    expect(dialog).to_be_visible(timeout=120_000)
    text = dialog.inner_text()
    return text


def close_dialog(page) -> None:
    """Close formgrader's result dialog; it is removed from the page once hidden (so is its backdrop)."""
    from playwright.sync_api import expect
    page.locator(".modal:visible .modal-footer button").last.click()
    expect(page.locator(".modal, .modal-backdrop")).to_have_count(0)


def assignment_list(page):
    from tests.test_browser import click_menu
    click_menu(page, "Nbgrader", "Assignment List")
    return page.locator(".lm-Widget.jp-MainAreaWidget", has_text="Released assignments").last


def work(page, hub, kind: str, steps: Steps) -> None:
    """Open the fetched notebook, answer as this kind of student does, save, Validate."""
    from playwright.sync_api import expect
    user = STUDENTS[kind]
    page.goto(f"{hub['url']}/user/{user}/lab/tree/{ASSIGNMENT}/{NOTEBOOK}")
    cells = page.locator(".jp-Notebook .jp-Cell")
    expect(cells.first.locator(".jp-RenderedMarkdown h1")).to_contain_text("Imagenette")
    source = ROOT / "source" / ASSIGNMENT / NOTEBOOK
    index, answers = cell_index(source), solution_cells(source)
    fills = {}
    if kind == "right":
        fills = {g: text for g, (_, text) in answers.items()}
    elif kind == "seeded":
        fills = {**{g: text for g, (_, text) in answers.items() if g == "first_prototype_step_answer"},
                 **SEED_ANSWERS, WRITTEN: "Imagenette is smaller."}
    for grade_id, text in fills.items():
        replace_cell_source(page, cells.nth(index[grade_id]), text)
    page.keyboard.press("Control+S")
    # Saved: the notebook's tab loses its unsaved-changes mark (Validate reads the file on disk).
    expect(page.locator(".lm-TabBar-tab.jp-mod-current.jp-mod-dirty")).to_have_count(0)
    page.locator("jp-button.validate-button").click()
    dialog = page.locator(".jp-Dialog", has_text="Validation Results")
    expect(dialog).to_be_visible(timeout=240_000)
    expect(dialog.locator(".jp-Dialog-body")).not_to_be_empty()
    text = dialog.inner_text()
    steps.shot(f"{kind}_validate", page)
    if kind == "right":
        assert "Success" in text and "passes all the tests" in text, text[:600]
    else:
        assert "passes all the tests" not in text, text[:600]
    dialog.locator("button", has_text="OK").first.click()


def _gradebook(course: Path, query: str, *args):
    """One value from the course's gradebook (read as root, beside formgrader)."""
    with sqlite3.connect(course / "gradebook.db") as db:
        row = db.execute(query, args).fetchone()
    return row[0] if row else None


def _saves(page, api: str):
    """Wait for formgrader's PUT to one of its API routes (a grade or a comment saved)."""
    return page.expect_response(lambda r: api in r.url and r.request.method == "PUT", timeout=SECONDS)


def _manual_score(course: Path, student: str):
    return _gradebook(course, "select g.manual_score from grade g join submitted_notebook sn on g.notebook_id = sn.id "
                              "join submitted_assignment sa on sn.assignment_id = sa.id join base_cell gc "
                              "on g.cell_id = gc.id where sa.student_id = ? and gc.name = ?", student, WRITTEN)


def test_course_round_trip(hub):
    from playwright.sync_api import expect
    expect.set_options(timeout=SECONDS)
    steps = Steps(ARTIFACTS, hub["start"])
    course = Path(hub["course"]["course"])
    exchange = Path(hub["course"]["exchange"])

    # 1. The instructor logs in and releases the assignment in formgrader.
    teacher = log_in(hub, INSTRUCTOR)
    expect(teacher.locator(".jp-DirListing-item", has_text="source")).to_be_visible()
    steps.shot("instructor_lab", teacher)
    formgrader(teacher, hub, "manage_assignments")
    expect(teacher.locator("tr", has_text=ASSIGNMENT).first).to_be_visible()
    result = formgrader_action(teacher, "release")
    assert "Success" in result, result[:800]
    close_dialog(teacher)
    teacher.reload()
    expect(teacher.locator("tr", has_text=ASSIGNMENT).first.locator("td.status")).to_contain_text("released")
    steps.shot("formgrader_released", teacher)

    # 2. Each student logs in, fetches, works, validates and submits.
    pages = {}
    for kind, user in STUDENTS.items():
        page = pages[kind] = log_in(hub, user)
        panel = assignment_list(page)
        fetch = panel.locator("button", has_text=re.compile("^Fetch$"))
        expect(fetch).to_be_visible(timeout=SECONDS)
        if kind == "right":
            steps.shot("student_assignment_list", page)
        fetch.click()
        expect(panel.locator("button", has_text=re.compile("^Submit$"))).to_be_visible(timeout=SECONDS)
        work(page, hub, kind, steps)
        panel = assignment_list(page)
        panel.locator("button", has_text=re.compile("^Submit$")).click()
        expect(panel).to_contain_text("submitted", timeout=SECONDS)
        steps.shot(f"{kind}_submitted", page)

    # 3. The instructor collects in formgrader ...
    formgrader(teacher, hub, "manage_assignments")
    result = formgrader_action(teacher, "collect")
    assert "Success" in result, result[:800]
    close_dialog(teacher)
    collected = sorted(p.name for p in (course / "collected").iterdir())
    assert collected == sorted(STUDENTS.values()), collected

    # ... and grades with the project's sandboxed grader, as the instructor's Unix user (their terminal).
    entry = pwd.getpwnam(INSTRUCTOR)
    python = hub["course"]["python"]
    grade = subprocess.run(
        [python, "-m", "autograder.cli", "grade", str(course / "collected"), "--grading-root", str(course),
         "--source", str(course / "source"), "--jobs", "1"],
        cwd=course, user=entry.pw_uid, group=entry.pw_gid, extra_groups=[], capture_output=True, text=True,
        env={"HOME": entry.pw_dir, "USER": INSTRUCTOR, "PATH": f"{Path(python).parent}:/usr/bin:/bin",
             "LD_LIBRARY_PATH": hub["course"]["library_path"],
             "WORKBOOK_CACHE": str(ROOT / ".cache"), "WORKBOOK_FAST": "1"}, timeout=1500)
    (ARTIFACTS / "grade.log").write_text(grade.stdout + grade.stderr)
    assert grade.returncode == 0, (grade.stdout + grade.stderr)[-3000:]
    assert "3 of 3 submissions graded" in grade.stdout, grade.stdout
    with open(course / "grades.csv") as f:
        import csv
        totals = {r["student"]: float(r["total"]) for r in csv.DictReader(f)}
    # Autograded points of 01_imagenette: three answers of 1 point; the written answers wait for a person.
    assert totals == {STUDENTS["right"]: 3.0, STUDENTS["seeded"]: 1.0, STUDENTS["blank"]: 0.0}, totals
    formgrader(teacher, hub, "manage_submissions/" + ASSIGNMENT)
    expect(teacher.locator("table")).to_contain_text(STUDENTS["blank"])
    steps.shot("formgrader_submissions", teacher)

    # 4. A written answer graded by hand in formgrader (points and a comment).
    submission_id = _gradebook(course, "select sn.id from submitted_notebook sn join submitted_assignment sa "
                               "on sn.assignment_id = sa.id where sa.student_id = ?", STUDENTS["right"])
    formgrader(teacher, hub, f"submissions/{submission_id}/")
    # Formgrader binds its inputs to the gradebook only once its grades and comments have loaded; a value
    # typed before that is neither saved nor kept (the load writes the stored value back).
    teacher.wait_for_function("() => window.formgrader && formgrader.grades && formgrader.grades.loaded"
                              " && formgrader.comments && formgrader.comments.loaded", timeout=SECONDS)
    score = teacher.locator(f"input.score#{WRITTEN}")
    expect(score).to_be_visible()
    with _saves(teacher, "/api/grade/") as grade_put:
        score.fill("2")
        score.press("Tab")   # the change event: formgrader saves the grade (PUT)
    assert grade_put.value.ok, f"saving the hand-given points answered {grade_put.value.status}"
    comment = teacher.locator(f"textarea#{WRITTEN}-comment")
    with _saves(teacher, "/api/comment/") as comment_put:
        comment.fill(MANUAL_COMMENT)
        comment.press("Tab")
    assert comment_put.value.ok, f"saving the comment answered {comment_put.value.status}"
    assert _manual_score(course, STUDENTS["right"]) == 2.0, "formgrader answered but the gradebook lacks the points"
    score.scroll_into_view_if_needed()
    steps.shot("manual_grade", teacher)

    # 5. Feedback generated and released in formgrader.
    formgrader(teacher, hub, "manage_assignments")
    for column in ("generate-feedback", "release-feedback"):
        result = formgrader_action(teacher, column)
        assert "Success" in result, result[:800]
        close_dialog(teacher)
    steps.shot("feedback_released", teacher)

    # 6. Each student fetches their feedback and sees their own scores and messages, nothing hidden.
    marks = {kind: set() for kind in STUDENTS}
    for kind, user in STUDENTS.items():
        page = pages[kind]
        panel = assignment_list(page)
        panel.locator("button", has_text="Fetch Feedback").click()
        expect(panel).to_contain_text("view feedback", timeout=SECONDS)
        home = Path(pwd.getpwnam(user).pw_dir)
        (html,) = (home / ASSIGNMENT / "feedback").glob(f"*/{NOTEBOOK.replace('.ipynb', '.html')}")
        page.goto(f"{hub['url']}/user/{user}/files/{html.relative_to(home)}")
        text = page.locator("body").inner_text()
        steps.shot(f"{kind}_feedback", page)
        assert re.search(r"Score:\s*\S", text), text[:500]
        for other in STUDENTS.values():
            assert (other == user) or other not in page.content(), f"{user}'s feedback names {other}"
        for secret in ("BEGIN HIDDEN TESTS", "record(", "autograder.reference", "### BEGIN SOLUTION"):
            assert secret not in page.content(), f"{user}'s feedback shows {secret!r}"
        marks[kind] = text
    assert MANUAL_COMMENT in marks["right"] and MANUAL_COMMENT not in marks["seeded"]
    # 3 autograded points and the 2 given by hand, of 6 (Q14, 1 point, is left ungraded).
    assert re.search(r"Score:\s*5(\.0+)?\s*/\s*6", marks["right"]), marks["right"][:400]

    # 7. From the blank student's kernel, with the exact paths in hand (as if leaked): another student's
    #    submission in the exchange, their home, the instructor's source and collected copies cannot be
    #    read, nor the inbound folder listed; the student's own submission can (the probe works).
    inbound = exchange / hub["course"]["course_id"] / "inbound"
    submitted = {u: next(inbound.glob(f"{u}+{ASSIGNMENT}+*")) for u in STUDENTS.values()}
    other = STUDENTS["right"]
    probes = {
        "own submission": submitted[STUDENTS["blank"]] / NOTEBOOK,
        "other submission": submitted[other] / NOTEBOOK,
        "other submission secret": submitted[other] / "submission_secret.txt",
        "other home notebook": Path(pwd.getpwnam(other).pw_dir) / ASSIGNMENT / NOTEBOOK,
        "instructor source": course / "source" / ASSIGNMENT / NOTEBOOK,
        "instructor collected": course / "collected" / other / ASSIGNMENT / NOTEBOOK,
        "inbound listing": inbound,
    }
    assert all(path.exists() for path in probes.values()), probes  # so a refusal is not a missing file
    page = pages["blank"]
    page.goto(f"{hub['url']}/user/{STUDENTS['blank']}/lab/tree/{ASSIGNMENT}/{NOTEBOOK}")
    # The notebook on screen (a restored layout may keep other, hidden panels in the page).
    notebook = page.locator(".jp-NotebookPanel:visible").filter(has_text="Imagenette").first
    expect(notebook.locator(".jp-Cell").first.locator(".jp-RenderedMarkdown h1")).to_contain_text("Imagenette")
    # The probe goes into the student's first code answer cell of the blank (already submitted) notebook:
    # an answer cell is editable (nbgrader's test cells are read-only, and typing into one does nothing).
    source = ROOT / "source" / ASSIGNMENT / NOTEBOOK
    answer = next(g for g, (kind, _) in solution_cells(source).items() if kind == "code")
    cell = notebook.locator(".jp-Cell").nth(cell_index(source)[answer])
    probe = (
        "import os\n"
        f"probes = {json.dumps({name: str(path) for name, path in probes.items()})}\n"
        "for name, path in probes.items():\n"
        "    try:\n"
        "        n = len(os.listdir(path)) if os.path.isdir(path) else len(open(path, 'rb').read())\n"
        "        print(f'{name}: read {n}')\n"
        "    except OSError as e:\n"
        "        print(f'{name}: {type(e).__name__}')\n"
        "print('probe done')\n")
    try:
        replace_cell_source(page, cell, probe)
        expect(cell.locator(".jp-InputArea-editor")).to_contain_text("probe done")  # the probe is in the cell
        cell.locator(".jp-InputArea-editor").click()
        page.keyboard.press("Shift+Enter")
        output = cell.locator(".jp-OutputArea").first
        expect(output).to_contain_text("probe done", timeout=SECONDS)
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "failed_isolation_probe.png"))
        raise
    lines = dict(line.split(": ", 1) for line in output.inner_text().splitlines() if ": " in line)
    steps.shot("isolation_from_kernel", page)
    assert lines.keys() == probes.keys(), lines
    assert lines.pop("own submission").startswith("read "), lines
    assert set(lines.values()) == {"PermissionError"}, lines

    elapsed = time.monotonic() - hub["start"]
    print(f"\nhub round trip: {elapsed:.0f} s from setting up the course to the last step; screenshots in {ARTIFACTS}:")
    print("\n".join(f"  {s}" for s in steps.done))

"""The student and instructor experience in JupyterLab 4, driven in headless Chromium.

Student: JupyterLab on a temporary copy of release/sizing_and_tta opens 01_imagenette, runs all cells
(the first exercise cell stops the run with NotImplementedError, the figure above it is visible), gets a
one-line message from a visible test for a wrong answer, pastes the solutions from source/, runs them,
presses nbgrader's Validate and reads the success message, and opens the assignment list (the exchange
must be writable). Instructor: JupyterLab on the course root shows the assignment in formgrader.
A screenshot of every step goes to test-artifacts/browser/ and is checked not to be blank.
"""
import json
import os
import re
import secrets
import shutil
import sys
import time
from pathlib import Path

import pytest

from tests.browser import browser_test_setup, pixel_stats, start_chromium, start_lab, stop_group, wait_ready

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "sizing_and_tta"
NOTEBOOK = "01_imagenette.ipynb"
ARTIFACTS = ROOT / "test-artifacts" / "browser"
# As `make lab`: formgrader is the instructor's; on the student's notebook root it could only log errors.
STUDENT_ARGS = ("--ServerApp.jpserver_extensions=nbgrader.server_extensions.formgrader=False",)
# As `make lab`: student_lab/ first on the config path turns off nbgrader's instructor plugins.
STUDENT_ENV = {"JUPYTER_CONFIG_PATH": os.pathsep.join([str(ROOT / "student_lab"), str(ROOT)])}
ANNOUNCEMENTS = "@jupyterlab/apputils-extension:announcements"
INSTRUCTOR_PLUGINS = ("@jupyter/nbgrader:create-assignment", "@jupyter/nbgrader:formgrader",
                      "@jupyter/nbgrader:course-list")
CELLS = ".jp-Notebook .jp-Cell"
FIRST_EXERCISE = "imagenet_is_answer"
WRONG_ANSWER = "imagenet_is = 3   # a wrong type, to see the visible test's message\n"


def solution_cells(notebook: Path) -> dict[str, tuple[str, str]]:
    """grade_id -> (cell type, solution source without the markers) of every answer cell of `notebook`."""
    cells = json.loads(notebook.read_text())["cells"]
    answers = {}
    for cell in cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution"):
            lines = "".join(cell["source"]).splitlines()
            answers[meta["grade_id"]] = (cell["cell_type"], "\n".join(
                line for line in lines if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line))
    return answers


def cell_index(notebook: Path) -> dict[str, int]:
    """grade_id -> position of the cell in the notebook."""
    cells = json.loads(notebook.read_text())["cells"]
    return {c["metadata"]["nbgrader"]["grade_id"]: i for i, c in enumerate(cells)
            if "grade_id" in c.get("metadata", {}).get("nbgrader", {})}


def server_env(grading_root: Path) -> dict:
    """The environment of both servers: the repository's caches, the course config, a private grading root."""
    env = dict(os.environ)
    cache = ROOT / ".cache"
    for var, default in (("WORKBOOK_CACHE", cache), ("FASTAI_HOME", cache / "fastai"),
                         ("TORCH_HOME", cache / "torch"), ("MPLCONFIGDIR", cache / "matplotlib"),
                         ("JUPYTER_CONFIG_DIR", cache / "jupyter" / "config"),
                         ("JUPYTER_DATA_DIR", cache / "jupyter" / "data"), ("IPYTHONDIR", cache / "ipython")):
        env.setdefault(var, str(default))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["JUPYTER_CONFIG_PATH"] = str(ROOT)          # nbgrader_config.py, as `make lab` sets it
    env["WORKBOOK_GRADING_ROOT"] = str(grading_root)
    env["WORKBOOK_FAST"] = "1"                     # the reduced training budget, for run-all and Validate
    return env


class Steps:
    """Screenshots named by step, each checked to be more than a blank page."""

    def __init__(self, folder: Path, start: float):
        self.folder, self.start, self.done = folder, start, []

    def shot(self, name: str, target, *, min_colours: int = 24, min_ink: float = 0.02) -> Path:
        path = self.folder / f"{len(self.done) + 1:02d}_{name}.png"
        target.screenshot(path=str(path))
        colours, ink = pixel_stats(path)
        assert colours >= min_colours and ink >= min_ink, (
            f"screenshot {path.name} looks blank: {colours} colours (need {min_colours}), "
            f"{ink:.1%} non-white pixels (need {min_ink:.0%})")
        self.done.append(f"{path.name} ({time.monotonic() - self.start:.0f} s, {colours} colours, {ink:.0%} ink)")
        print(self.done[-1], flush=True)
        return path


@pytest.fixture
def browser_setup(tmp_path):
    """Two JupyterLab servers (student on a copy of the release, instructor on the course) and Chromium."""
    started_at = time.monotonic()
    playwright = browser_test_setup(ARTIFACTS)
    student_root = tmp_path / "student"
    shutil.copytree(ROOT / "release" / ASSIGNMENT, student_root)
    # The grading root must be inside the instructor's notebook root for formgrader; a private one per run.
    grading_root = ROOT / ".grading" / f"browser-test-{secrets.token_hex(4)}"
    env = server_env(grading_root)
    started = []
    try:
        student = start_lab(student_root, student_root, ARTIFACTS / "student-lab.log", {**env, **STUDENT_ENV},
                            secrets.token_hex(16), STUDENT_ARGS)
        started.append(student.proc)
        instructor = start_lab(ROOT, ROOT, ARTIFACTS / "instructor-lab.log", env, secrets.token_hex(16))
        started.append(instructor.proc)
        chromium, ws_url = start_chromium(tmp_path / "chromium-profile", ARTIFACTS / "chromium.log")
        started.append(chromium)
        wait_ready(student)
        wait_ready(instructor)
        with playwright.sync_playwright() as pw:
            browser = pw.chromium.connect_over_cdp(ws_url)
            yield browser, student, instructor, started_at
            browser.close()
    finally:
        for proc in reversed(started):
            stop_group(proc)
        shutil.rmtree(grading_root, ignore_errors=True)


def click_menu(page, menu: str, item: str) -> None:
    """Open a menu of the menu bar and click one of its items (exact labels)."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{re.escape(menu)}$")).click()
    page.locator(".lm-Menu-content .lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(item)}$")).click()


def replace_cell_source(page, cell, text: str) -> None:
    """Replace all the text of a cell by `text` as a user would: edit mode, select all, type; a Markdown
    cell is rendered again (Ctrl+Enter), a code cell is left unrun in command mode."""
    cell.scroll_into_view_if_needed()
    markdown = "jp-MarkdownCell" in (cell.get_attribute("class") or "")
    if markdown:
        cell.locator(".jp-InputArea").dblclick()         # a rendered Markdown cell opens its editor
    cell.locator(".jp-InputArea-editor .cm-content").click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(text)
    page.keyboard.press("Control+Enter" if markdown else "Escape")


def wait_idle(page, timeout: float) -> None:
    """Wait until the notebook's kernel has run everything queued (no `[*]` prompt, kernel idle)."""
    page.wait_for_function(
        """() => !Array.from(document.querySelectorAll('.jp-Notebook .jp-InputPrompt'))
                   .some(p => p.textContent.includes('*'))""", timeout=timeout)


def test_student_and_instructor_in_jupyterlab(browser_setup):
    from playwright.sync_api import expect

    browser, student, instructor, start = browser_setup
    steps = Steps(ARTIFACTS, start)
    source_nb = ROOT / "source" / ASSIGNMENT / NOTEBOOK
    index = cell_index(source_nb)
    assert cell_index(ROOT / "release" / ASSIGNMENT / NOTEBOOK) == index, "release/ and source/ cells differ; make release"
    answers = solution_cells(source_nb)
    exercise = index[FIRST_EXERCISE]
    first_test = index[FIRST_EXERCISE.removesuffix("_answer")]
    page = browser.contexts[0].new_page()
    page.set_default_timeout(60_000)
    expect.set_options(timeout=60_000)

    # 1. The student opens the release notebook; the explanatory cells are rendered Markdown.
    page.goto(student.page_url(f"/lab/tree/{NOTEBOOK}"))
    cells = page.locator(CELLS)
    expect(cells.first.locator(".jp-RenderedMarkdown h1")).to_contain_text("Imagenette")
    expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")).to_be_attached(timeout=60_000)
    steps.shot("notebook_open", page)
    unrendered = page.locator(".jp-MarkdownCell:not(.jp-mod-rendered)").count()
    assert unrendered == 0, f"{unrendered} Markdown cells show their source instead of rendered text"

    # 2. Run all cells: the run stops at the first exercise with NotImplementedError.
    click_menu(page, "Run", "Run All Cells")
    # Meanwhile the instructor (a browser context of its own: Jupyter's cookies are per host, not per port)
    # loads JupyterLab on the course root.
    instructor_page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    instructor_page.set_default_timeout(60_000)
    instructor_page.goto(instructor.page_url("/lab"))
    error = cells.nth(exercise).locator(".jp-OutputArea-output")
    expect(error).to_contain_text("NotImplementedError", timeout=150_000)
    wait_idle(page, 30_000)
    error.scroll_into_view_if_needed()
    steps.shot("run_all_exercise_raises", page)
    failed_before = page.evaluate("""n => Array.from(document.querySelectorAll('.jp-Notebook .jp-Cell'))
        .slice(0, n).map((cell, i) => [i, cell.querySelector('.jp-OutputArea')?.innerText ?? ''])
        .filter(([i, text]) => text.includes('Traceback')).map(([i]) => i)""", exercise)
    assert not failed_before, f"cells {failed_before} above the exercise failed in the release notebook"

    # 3. Figures are visible: every image in rendered Markdown and outputs has loaded with a size.
    images = page.evaluate("""() => Array.from(document.querySelectorAll(
            '.jp-Notebook .jp-RenderedMarkdown img, .jp-Notebook .jp-OutputArea-output img'))
        .map(img => ({src: img.src.slice(0, 80), ok: img.complete && img.naturalWidth > 0,
                      w: img.naturalWidth, h: img.naturalHeight}))""")
    broken = [img["src"] for img in images if not img["ok"]]
    assert images and not broken, f"images {broken} do not load (of {len(images)} images in the notebook)"
    figure = page.locator(".jp-Notebook .jp-OutputArea-output img").first
    figure.scroll_into_view_if_needed()
    steps.shot("figure", figure, min_ink=0.2)

    # 4. A wrong answer: the visible test says in one line what it expected and what it received.
    replace_cell_source(page, cells.nth(exercise), WRONG_ANSWER)
    cells.nth(exercise).locator(".jp-InputPrompt").click()
    click_menu(page, "Run", "Run Selected Cell and All Below")
    message = cells.nth(first_test).locator(".jp-OutputArea-output")
    expect(message).to_contain_text("AssertionError", timeout=60_000)
    wait_idle(page, 30_000)
    last_line = message.inner_text().strip().splitlines()[-1]
    assert re.search(r"expected .+, received .+", last_line) and "str" in last_line and "int" in last_line, (
        f"the visible test's last line does not say what was expected and received: {last_line!r}")
    message.scroll_into_view_if_needed()
    steps.shot("visible_test_message", page)

    # 5. The solutions from source/ pasted into every answer cell (code and the written answers) run, and
    #    the visible tests pass.
    code_answers = [g for g, (kind, _) in answers.items() if kind == "code"]
    for grade_id, (_, text) in answers.items():
        replace_cell_source(page, cells.nth(index[grade_id]), text)
    cells.nth(exercise).locator(".jp-InputPrompt").click()
    click_menu(page, "Run", "Run Selected Cell and All Below")
    last_test = max(index[g.removesuffix("_answer")] for g in code_answers)
    expect(cells.nth(last_test).locator(".jp-InputPrompt")).to_have_text(re.compile(r"\[\d+\]"), timeout=60_000)
    wait_idle(page, 30_000)
    code_cells = sorted(i for g in code_answers for i in (index[g], index[g.removesuffix("_answer")]))
    outputs = {i: cells.nth(i).locator(".jp-OutputArea").inner_text() for i in code_cells}
    failing = {i: text[-200:] for i, text in outputs.items() if "Error" in text}
    assert not failing, f"cells still fail after pasting the solutions: {failing}"
    cells.nth(exercise).scroll_into_view_if_needed()
    steps.shot("solutions_pass", page)

    # 6. The student presses nbgrader's Validate (it saves, then runs the notebook in a fresh kernel) ...
    page.locator("jp-button.validate-button").click()
    expect(page.locator("jp-button.validate-button")).to_contain_text("Validating")

    # 7. ... and while it runs, the instructor opens formgrader and sees the assignment.
    click_menu(instructor_page, "Nbgrader", "Formgrader")
    frame = instructor_page.frame_locator("iframe").last
    expect(frame.locator("body")).to_contain_text("Manage Assignments")
    expect(frame.locator("table tbody tr", has_text=ASSIGNMENT)).to_have_count(1)
    steps.shot("formgrader", instructor_page)

    # 8. Validate reports success.
    dialog = page.locator(".jp-Dialog", has_text="Validation Results")
    expect(dialog).to_contain_text("Success", timeout=150_000)
    assert "Your notebook passes all the tests" in dialog.inner_text(), dialog.inner_text()[:500]
    steps.shot("validate_success", page)
    dialog.locator("button", has_text="OK").first.click()

    # 9. The student's Nbgrader menu has the assignment list but none of the instructor's tools, which
    #    the instructor's JupyterLab keeps; then the assignment list loads (the exchange is writable).
    for who, lab_page in (("student", page), ("instructor", instructor_page)):
        disabled = lab_page.evaluate(
            "() => JSON.parse(document.getElementById('jupyter-config-data').textContent).disabledExtensions || []")
        off = [p for p in INSTRUCTOR_PLUGINS if p in disabled]
        assert off == (list(INSTRUCTOR_PLUGINS) if who == "student" else []), (who, disabled)
    # No "get notified about official Jupyter news?" toast for students (the announcements plugin is off).
    assert ANNOUNCEMENTS in page.evaluate(
        "() => JSON.parse(document.getElementById('jupyter-config-data').textContent).disabledExtensions || []")
    assert "official Jupyter news" not in page.locator("body").inner_text()
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^Nbgrader$")).click()
    menu = page.locator(".lm-Menu-content .lm-Menu-itemLabel").all_inner_texts()
    assert "Assignment List" in menu and not {"Formgrader", "Course List"} & set(menu), menu
    page.keyboard.press("Escape")
    click_menu(page, "Nbgrader", "Assignment List")
    panel = page.locator(".lm-Widget.jp-MainAreaWidget", has_text="Released assignments").last
    # Loaded: the empty list of released assignments (nothing is released), or nbgrader's error text.
    expect(panel).to_contain_text(re.compile("There are no assignments to fetch|does not exist|Unwritable|Error"))
    expect(panel).to_contain_text(re.compile("No courses found|Error fetching courses|sizing-and-tta"))
    text = panel.inner_text()
    assert "Unwritable" not in text and "does not exist" not in text and "Error" not in text, text[:500]
    steps.shot("assignment_list", page)

    for server in (student, instructor):
        log = server.log.read_text()
        assert "Traceback" not in log and "[E " not in log, f"{server.log.name} has errors:\n{log[-3000:]}"

    elapsed = time.monotonic() - start
    print(f"\nbrowser test: {elapsed:.0f} s from starting the servers to the last step; screenshots in {ARTIFACTS}:")
    print("\n".join(f"  {s}" for s in steps.done))


def test_stop_group_ends_the_group_and_descendants_in_sessions_of_their_own(tmp_path):
    """Like a Jupyter server and its kernels: the leader, a child in its group, a child in a new session."""
    import subprocess

    script = ("import subprocess, sys, time\n"
              "a = subprocess.Popen(['sleep', '300'])\n"
              "b = subprocess.Popen(['sleep', '300'], start_new_session=True)\n"
              "print(a.pid, b.pid, flush=True)\n"
              "time.sleep(300)\n")
    leader = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    in_group, own_session = (int(p) for p in leader.stdout.readline().split())
    leader.stdout.close()
    assert os.getpgid(own_session) != leader.pid
    stop_group(leader, timeout=2)
    time.sleep(0.5)
    for pid in (leader.pid, in_group, own_session):
        state = Path(f"/proc/{pid}/stat")
        assert not state.exists() or state.read_text().rsplit(")", 1)[1].split()[0] == "Z", f"process {pid} still runs"

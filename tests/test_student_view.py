"""What a student sees, checked without a browser: notebook outputs free of library noise, figures
with alt text, headings that form an outline, the narrow warnings filter, feedback wording and the
offline MathJax of the feedback pages. (tests/test_browser_student_view.py looks at the same in
Chromium.)"""
import re
import subprocess
import sys

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from autograder.rubric import Verdict
from autograder.config import ASSIGNMENT, REPO_ROOT
from autograder.pipeline import _no_recording_message, verdict_outputs
from tests.student_view import noise

NOTEBOOKS = sorted((REPO_ROOT / "source" / ASSIGNMENT).glob("*.ipynb"))
MIN_ALT = 60   # characters: a sentence that says what the figure shows, not "a plot"


def output_text(output) -> str:
    if output.output_type == "stream":
        return output.text
    if output.output_type == "error":
        return "\n".join(output.traceback)
    return "\n".join(str(output.get("data", {}).get(k, "")) for k in ("text/plain", "text/html", "text/markdown"))


def test_noise_finds_what_the_first_cell_used_to_print():
    printed = ("/work/main/.venv/lib/python3.11/site-packages/torch/jit/_script.py:1491: FutureWarning: "
               "`torch.jit.script` is deprecated. Please switch to `torch.compile` or `torch.export`.\n")
    kinds = {found.split(":")[0] for found in noise(printed)}
    assert kinds == {"warning", "absolute path"}
    assert noise("wrote runs/07_long_training/baseline/results.csv; --data 160/320/full; see https://x.org/a/b") == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_outputs_show_no_warning_path_or_traceback(path):
    nb = nbformat.read(path, as_version=4)
    found = [f"cell {i}: {n}" for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
             for output in cell.outputs for n in noise(output_text(output))]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_figure_cell_has_alt_text_in_source_and_release(path):
    release = {c.get("id"): c for c in nbformat.read(REPO_ROOT / "release" / ASSIGNMENT / path.name, as_version=4).cells}
    figures = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"
               and any("image/png" in o.get("data", {}) for o in c.outputs)]
    short = [c.id for c in figures if len(c.metadata.get("alt", "")) < MIN_ALT]
    assert not short, f"figure cells {short} need an alt text of {MIN_ALT}+ characters (cell metadata 'alt')"
    lost = [c.id for c in figures if release[c.id].metadata.get("alt") != c.metadata["alt"]]
    assert not lost, f"release/ lost the alt text of cells {lost}; run make release"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_headings_form_an_outline(path):
    """One title (h1) in the first cell, and no heading more than one level below the one before it."""
    cells = nbformat.read(path, as_version=4).cells
    levels = [(i, len(m.group(1))) for i, c in enumerate(cells) if c.cell_type == "markdown"
              for m in re.finditer(r"^(#{1,6}) \S", re.sub(r"```.*?```", "", c.source, flags=re.S), re.M)]
    assert levels[0] == (0, 1), f"the first heading must be the notebook's title (h1) in cell 0: {levels[:2]}"
    title = cells[0].source.splitlines()[0]
    assert title.startswith(f"# {int(path.stem[:2])} · "), f"the title names the notebook's number: {title!r}"
    assert [i for i, level in levels if level == 1] == [0], "one h1 per notebook"
    jumps = [(i, a, b) for (_, a), (i, b) in zip(levels, levels[1:]) if b > a + 1]
    assert not jumps, f"headings skip a level (cell, from, to): {jumps}"


def test_runs_in_one_plot_differ_in_marker_and_line_style_not_only_in_colour():
    from matplotlib.colors import to_rgb

    from workbook.plots import RUN_STYLES

    for key in ("color", "marker", "linestyle"):
        assert len({s[key] for s in RUN_STYLES}) == len(RUN_STYLES), key
    # Not red next to green: no style is a red or a green of the default cycle (tab:red, tab:green).
    assert not {to_rgb(s["color"]) for s in RUN_STYLES} & {to_rgb("tab:red"), to_rgb("tab:green")}


def _python(code: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-W", "default", "-c", code], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


@pytest.mark.slow
def test_workbook_hides_the_jit_warning_of_importing_fastai_and_nothing_else():
    # One interpreter (fastai's import is most of its time): the warnings of importing fastai are recorded; then,
    # with workbook imported, the same warning from the same line (torch.jit.script's first) is hidden, and
    # another FutureWarning is shown.
    done = _python("import warnings\n"
                   "with warnings.catch_warnings(record=True) as caught:\n"
                   "    warnings.simplefilter('default')\n"
                   "    import fastai.vision.all\n"
                   "print(*(f'{w.filename}: {w.category.__name__}: {w.message}' for w in caught), sep='\\n')\n"
                   "import torch, workbook\n"
                   "torch.jit.script(torch.nn.Identity())\n"
                   "warnings.warn('another deprecation', FutureWarning)\n")
    on_import = [line for line in done.stdout.splitlines() if "torch.jit.script" in line]
    assert on_import and all("/torch/jit/_script.py: FutureWarning: " in line for line in on_import), done.stdout
    assert "torch.jit.script" not in done.stderr and "FutureWarning: another deprecation" in done.stderr, done.stderr


def _notebook(*cells):
    nb = new_notebook(cells=list(cells))
    for i, cell in enumerate(nb.cells):
        cell.metadata["nbgrader"] = {"grade_id": f"cell_{i}", "grade": False, "solution": i == 0}
    return nb


def _error(ename, evalue):
    return new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def test_nothing_recorded_opens_with_what_the_students_cell_raised():
    solution = new_code_cell("def f(x): raise NotImplementedError()")
    test = new_code_cell("assert f(1) == 2")
    test.outputs = [_error("AssertionError", "f(1): expected 2, received 3")]
    nb = _notebook(solution, test)
    assert _no_recording_message(nb, test).startswith("This cell raised AssertionError: f(1): expected 2, received 3")
    solution.outputs = [_error("NotImplementedError", "")]
    test.outputs = []
    message = _no_recording_message(nb, test)
    assert message.startswith("Cell cell_0 raised NotImplementedError.") and message.endswith("nothing from this cell to check")
    assert _no_recording_message(_notebook(new_code_cell("x = 1"), test), test).startswith("This cell stopped before its end")


def test_a_visible_check_names_an_unexpected_error_without_a_dangling_colon():
    from workbook.checks import expect_raises

    def not_done(x):
        raise NotImplementedError()

    with pytest.raises(AssertionError) as failure:
        expect_raises(ValueError, not_done, 1, what="normalize of a bad shape")
    assert str(failure.value) == "normalize of a bad shape: expected ValueError, received NotImplementedError"


def test_a_failed_check_shows_its_reason_first_and_no_grader_word():
    [output] = verdict_outputs(Verdict(False, "with x: a tensor [2, 3], expected 1.5, received 2.0"))
    assert output.output_type == "error"   # nbgrader scores a test cell with an error output 0
    assert output.traceback == ["✘ with x: a tensor [2, 3], expected 1.5, received 2.0"]
    [passed] = verdict_outputs(Verdict(True, "passed: values (4 inputs)"))
    assert passed.output_type == "stream" and passed.text.startswith("✔ passed")


def test_feedback_template_inlines_mathjax_and_keeps_alt_text():
    from nbconvert import HTMLExporter

    from autograder.feedback import NBGRADER_TEMPLATES, feedback_config

    config = feedback_config()
    config.HTMLExporter.template_name = "feedback"     # as nbgrader's API sets it
    # nbgrader's GenerateFeedback adds the folder of bootstrap.min.css itself; this test renders directly.
    config.HTMLExporter.extra_template_paths = [str(NBGRADER_TEMPLATES.parent / "static" / "node_modules" /
                                                    "bootstrap" / "dist" / "css")]
    figure = new_code_cell("plot()", metadata={"alt": "A line rising from left to right."})
    figure.outputs = [new_output("display_data", data={"image/png": "iVBORw0KGgo="})]
    nb = new_notebook(cells=[new_markdown_cell("Mean $\\mu_c$ and $$\\hat x = x - \\mu.$$"), figure])
    html, _ = HTMLExporter(config=config).from_notebook_node(
        nb, resources={"nbgrader": {"notebook": "n", "score": 0, "max_score": 0, "late_penalty": 0}})
    assert "cdnjs" not in html and "<script src=" not in html
    assert "window.MathJax" in html and "MathJax.startup" in html   # MathJax 3 itself, inlined
    assert 'alt="A line rising from left to right."' in html

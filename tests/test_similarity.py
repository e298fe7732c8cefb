"""The similarity report (autograder/similarity.py): planted, disguised copies rank above independently
written solutions, the released stubs are not evidence, and no student is silently left out."""
import itertools
import subprocess
import sys

import nbformat
import pytest

from autograder.config import REPO_ROOT
from autograder.similarity import compare_class, format_ranking, normalise, write_html
from autograder.golden.build import RELEASE, write_submission
from autograder.golden.copies import disguise, write_similarity_class


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    root = tmp_path_factory.mktemp("similarity")
    planted = write_similarity_class(root / "class")
    write_submission(root / "class" / "blank")               # the release as it is: nothing to compare
    (root / "class" / "notes.txt").write_text("not a student")
    return root, planted, compare_class(root / "class")


def test_planted_copies_rank_above_every_independent_pair(golden):
    _, planted, report = golden
    print("\n" + format_ranking(report))
    copies = {frozenset(pair) for pair in planted.items()}
    copy_scores = [p.score for p in report.pairs if frozenset((p.first, p.second)) in copies]
    other_scores = [p.score for p in report.pairs if frozenset((p.first, p.second)) not in copies]
    assert len(copy_scores) == len(planted)
    assert min(copy_scores) > max(other_scores), (copy_scores, max(other_scores))
    assert {frozenset((p.first, p.second)) for p in report.pairs[:len(copies)]} == copies


def test_every_pair_is_ranked_and_every_skipped_student_is_named(golden):
    _, _, report = golden
    assert len(report.pairs) == len(list(itertools.combinations(report.students, 2)))
    assert {frozenset((p.first, p.second)) for p in report.pairs} == \
        {frozenset(c) for c in itertools.combinations(report.students, 2)}
    assert report.skipped["blank"] == "no solution cell answered"
    assert "is a file, not a student folder" in report.skipped["notes.txt"]
    assert "blank" not in report.students


def test_the_html_report_ranks_and_shows_the_code_side_by_side(golden, tmp_path):
    _, _, report = golden
    page = write_html(report, tmp_path / "report.html", show=3).read_text()
    top = report.pairs[0]
    assert page.index(f"<td>{top.first}</td>") < page.index(f"<td>{report.pairs[-1].first}</td><td>{report.pairs[-1].second}</td>")
    assert page.count("<div class='side'>") == 3
    assert "highlight-red" in page and "highlight-green" in page
    assert f"1. {top.first} ↔ {top.second}" in page


def _stub_only_class(root, bodies):
    """Students who keep every stub (signature, docstring, comments) and add only their own line."""
    for name, body in bodies.items():
        fills = {}
        for path in sorted(RELEASE.glob("*.ipynb")):
            for cell in nbformat.read(path, as_version=4).cells:
                meta = cell.get("metadata", {}).get("nbgrader", {})
                if cell.cell_type == "code" and meta.get("solution"):
                    stub = cell.source.replace("raise NotImplementedError()", "")
                    fills.setdefault(path.stem, {})[meta["grade_id"]] = stub + f"\n    {body}\n"
        write_submission(root / name, fills)
    return root


def test_released_stubs_are_boilerplate(tmp_path):
    subs = _stub_only_class(tmp_path / "class", {"ann": "total = x + 1", "ben": "return None if y else z"})
    (tmp_path / "empty_release").mkdir()
    without = compare_class(subs, release=tmp_path / "empty_release")
    with_stubs = compare_class(subs)
    # Names and docstrings filter down to one letter each, so the stubs are short; still, without the
    # release as boilerplate their signatures count as shared code, and with it nothing does.
    assert without.pairs[0].tokens > 0 and without.pairs[0].score > 0
    assert with_stubs.pairs[0].tokens == 0 and with_stubs.pairs[0].score == 0.0


def test_normalise_drops_comments_formatting_and_magics():
    a = "import torch\n%matplotlib inline\ndef f(x):  # add one\n    return (x+1)\n"
    b = "import torch\n\n\ndef f(x):\n    # one more\n    return x + 1"
    assert normalise(a) == normalise(b) == "import torch\n\ndef f(x):\n    return x + 1"
    assert normalise("def f(:\n  pass") == "def f(:\n  pass"


def test_disguise_changes_the_text_not_the_behaviour():
    code = "def f(a, b):\n    s = a * 2\n    t = b * 3\n    return s + t\n\ng = f\n"
    changed = disguise(code)
    assert "my_a" in changed and "#" in changed and changed != code
    assert changed.index("my_t =") < changed.index("my_s =")
    env = {}
    exec(changed, env)
    assert env["g"](1, 2) == 8


@pytest.mark.slow
def test_cli_says_what_is_wrong(tmp_path):
    run = subprocess.run([sys.executable, "-m", "autograder.similarity", str(tmp_path / "nowhere")],
                         capture_output=True, text=True, cwd=REPO_ROOT)
    assert run.returncode == 2 and "is not a folder" in run.stderr
    write_submission(tmp_path / "one" / "solo", {"06_label_smoothing": {"q13_target_answer": "q13_target = [1.0]\n"}})
    run = subprocess.run([sys.executable, "-m", "autograder.similarity", str(tmp_path / "one")],
                         capture_output=True, text=True, cwd=REPO_ROOT)
    assert run.returncode == 2 and "fewer than two students" in run.stderr

"""Whole submissions through the real pipeline: nbgrader autograde with the sandboxed recorder and
the trusted judge, then CSV and HTML feedback."""
import csv

import nbformat
import pytest

from autograder.rubric import REGISTRY
from autograder.config import REPO_ROOT
from autograder.grading import grade_class
from autograder.experiment_cells import EXPERIMENT_TAG
from tests.notebook_grading import assert_runs_without_experiments
from autograder.reports import write_csv
from autograder.golden.build import SEED_ANSWERS, function_source, write_submission
from autograder.golden.attacks import normalization as normalization_attacks
from autograder.golden.mutants import normalization as normalization_mutants

pytestmark = pytest.mark.slow
NOTEBOOK = "02_normalization"
NOTEBOOKS = ["01_imagenette", "02_normalization"]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("class")
    subs = root / "submissions"
    write_submission(subs / "reference", reference=True, notebooks=NOTEBOOKS)
    write_submission(subs / "blank", notebooks=NOTEBOOKS)
    write_submission(subs / "mutant_unbiased", {NOTEBOOK: {"channel_stats_solution": function_source(
        normalization_mutants.stats_unbiased, "channel_stats")}}, reference=True, notebooks=[NOTEBOOK])
    write_submission(subs / "seed_student", {"01_imagenette": SEED_ANSWERS}, reference=True, notebooks=["01_imagenette"])
    for name, attack in normalization_attacks.ATTACKS.items():
        write_submission(subs / f"attack_{name}", {NOTEBOOK: attack["fills"]}, notebooks=[NOTEBOOK])
    _retag(write_submission(subs / "retagged", reference=True, notebooks=[NOTEBOOK]) / f"{NOTEBOOK}.ipynb")
    results = {r.student: r for r in grade_class(subs, root / "grading", jobs=1)}  # as tests/notebook_grading.py says
    write_csv(list(results.values()), root / "grades.csv")
    return root, results


def _retag(path):
    """A student who moves the experiment tag: off the master's experiment cells, onto a solution and a graded
    cell, and who prints from an experiment cell."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if EXPERIMENT_TAG in tags:
            cell.metadata["tags"] = [t for t in tags if t != EXPERIMENT_TAG]
            cell.source = "print('the student ran this')\n" + cell.source
        elif cell.metadata.get("nbgrader", {}).get("grade_id") in ("channel_stats_solution", "channel_stats_values"):
            cell.metadata["tags"] = [*tags, EXPERIMENT_TAG]
    nbformat.write(nb, path)


def cells(result, notebook=NOTEBOOK):
    return {k.split(":", 1)[1]: v for k, v in result.scores.items() if k.startswith(notebook + ":")}


def autograded(notebook_cells):
    return {k: v for k, v in notebook_cells.items() if k in REGISTRY}


def test_reference_earns_full_marks(graded):
    _, results = graded
    ref = results["reference"]
    assert ref.status == "graded"
    scored = autograded(cells(ref))
    assert scored and all(v > 0 for v in scored.values()), scored
    assert ref.total == sum(v for k, v in ref.scores.items() if k.split(":", 1)[1] in REGISTRY)


def test_seed_student_loses_exactly_the_questions_answered_wrongly(graded):
    _, results = graded
    ref = autograded(cells(results["reference"], "01_imagenette"))
    seed = autograded(cells(results["seed_student"], "01_imagenette"))
    assert ref and all(v > 0 for v in ref.values())
    assert {k for k in ref if seed[k] != ref[k]} == {"imagenet_is", "why_imagenette_first"}
    assert seed["imagenet_is"] == seed["why_imagenette_first"] == 0


def test_blank_release_earns_nothing(graded):
    _, results = graded
    assert results["blank"].status == "graded"
    assert results["blank"].total == 0


def test_whole_mutant_loses_exactly_its_check(graded):
    _, results = graded
    ref, mutant = autograded(cells(results["reference"])), autograded(cells(results["mutant_unbiased"]))
    lost = {k for k in ref if mutant[k] != ref[k]}
    assert lost == {"channel_stats_values"}
    assert mutant["channel_stats_values"] == 0


@pytest.mark.parametrize("attack", sorted(normalization_attacks.ATTACKS))
def test_attack_earns_no_points(graded, attack):
    _, results = graded
    result = results[f"attack_{attack}"]
    assert result.status == "graded"
    assert sum(autograded(cells(result)).values()) == 0, cells(result)


def test_csv_has_one_column_per_graded_cell(graded):
    root, results = graded
    with (root / "grades.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {r["student"] for r in rows} == set(results)
    assert f"{NOTEBOOK}:channel_stats_values" in rows[0]


def test_feedback_shows_expected_and_received_but_no_hidden_tests(graded):
    root, _ = graded
    html = (root / "grading" / "feedback" / "mutant_unbiased" / "sizing_and_tta" / f"{NOTEBOOK}.html").read_text()
    assert "GradingFailure" not in html and "expected tensor [1, 0, 2]" in html and "received tensor [1.414" in html
    for secret in ("BEGIN HIDDEN TESTS", "record(", "autograder.reference"):
        assert secret not in html
    blank = (root / "grading" / "feedback" / "blank" / "sizing_and_tta" / f"{NOTEBOOK}.html").read_text()
    assert "NotImplementedError" in blank


def test_submissions_are_not_modified(graded, tmp_path):
    root, _ = graded
    again = write_submission(tmp_path / "reference", reference=True, notebooks=NOTEBOOKS)
    for nb in again.glob("*.ipynb"):
        assert (root / "submissions" / "reference" / nb.name).read_bytes() == nb.read_bytes()


def test_table_notes_the_points_left_to_grade_by_hand(graded):
    """Written answers (manually graded cells, and tasks) are counted in a note, not silently as zeros."""
    import json
    by_hand = 0.0
    for name in NOTEBOOKS:
        for cell in json.loads((REPO_ROOT / "source" / "sizing_and_tta" / f"{name}.ipynb").read_text())["cells"]:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if (meta.get("grade") and meta.get("solution")) or meta.get("task"):
                by_hand += meta.get("points", 0)
    _, results = graded
    assert by_hand > 0
    assert f"{by_hand:g} points of written answers to grade by hand (formgrader)" in results["reference"].notes
    assert not any("by hand" in n for n in results["blank"].notes)   # unchanged answer cells: nothing to read


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_experiment_cells_are_left_out_and_say_so(graded, notebook):
    root, _ = graded
    assert_runs_without_experiments(root / "grading", "reference", notebook)


def test_which_cells_are_experiments_comes_from_the_master(graded):
    """Tags the student moved change nothing: the tagged solution and graded cells run and earn their points,
    the untagged experiment cells (and the student's print in them) stay out."""
    root, results = graded
    assert cells(results["retagged"]) == cells(results["reference"])
    assert_runs_without_experiments(root / "grading", "retagged", NOTEBOOK)

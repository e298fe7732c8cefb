"""Notebook 04 (test-time augmentation) graded end to end by the real pipeline: nbgrader autograde,
the sandboxed recorder (five_crop_tta called on probe models built in the kernel), the trusted judge."""
import pytest

from autograder.checks import REGISTRY
from autograder.grading import grade_class
from tests.golden import function_source, write_submission
from tests.submissions.mutants import tta as tta_mutants

pytestmark = pytest.mark.slow
NOTEBOOK = "04_test_time_augmentation"
TTA_CHECKS = {"five_crop_values", "five_crop_errors", "five_crop_tta_values", "five_crop_tta_mode",
              "five_crop_tta_no_grad", "fastai_tta_passes", "tta_speed"}
# Whole submissions: the reference notebook with one function replaced by a catalog mutant, and the
# checks it must lose. Crops in another order do not change the average, so five_crop_tta (which calls
# the student's five_crop) keeps its points; averaged logits break only the values of five_crop_tta.
MUTANTS = {
    "mutant_crop_order": ("five_crop_solution", tta_mutants.crops_other_order, "five_crop", {"five_crop_values"}),
    "mutant_mean_logits": ("five_crop_tta_solution", tta_mutants.tta_mean_of_logits, "five_crop_tta",
                           {"five_crop_tta_values"}),
}
# Four notebook runs keep this test near a minute; every other mutant is judged function by function
# (tests/test_mutants.py, tests/test_reference_tta.py).


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("class")
    subs = root / "submissions"
    write_submission(subs / "reference", reference=True, notebooks=[NOTEBOOK])
    write_submission(subs / "blank", notebooks=[NOTEBOOK])
    for student, (cell, fn, name, _) in MUTANTS.items():
        write_submission(subs / student, {NOTEBOOK: {cell: function_source(fn, name)}}, reference=True,
                         notebooks=[NOTEBOOK])
    return {r.student: r for r in grade_class(subs, root / "grading", feedback=False)}


def autograded(result) -> dict[str, float]:
    scores = {k.split(":", 1)[1]: v for k, v in result.scores.items() if k.startswith(NOTEBOOK + ":")}
    return {k: v for k, v in scores.items() if k in REGISTRY}


def test_every_check_of_the_notebook_is_graded(graded):
    assert set(autograded(graded["reference"])) == TTA_CHECKS


def test_reference_earns_full_marks(graded):
    ref = autograded(graded["reference"])
    assert graded["reference"].status == "graded"
    assert all(v > 0 for v in ref.values()), ref
    assert sum(ref.values()) == 9


def test_blank_earns_nothing(graded):
    assert graded["blank"].status == "graded"
    assert sum(autograded(graded["blank"]).values()) == 0


@pytest.mark.parametrize("student", sorted(MUTANTS))
def test_whole_mutant_loses_exactly_its_checks(graded, student):
    ref, mutant = autograded(graded["reference"]), autograded(graded[student])
    lost = {k for k in ref if mutant[k] != ref[k]}
    assert lost == MUTANTS[student][3]
    assert all(mutant[k] == 0 for k in lost)

"""Notebook 03_progressive_resizing through the real pipeline: nbgrader autograde with the sandboxed
recorder and the trusted judge. The reference earns every autograded point, the blank release none,
and whole mutant submissions (the seed student's growing batch size among them) lose exactly their checks."""
import pytest

from autograder.checks import REGISTRY
from autograder.checks.resizing import CHECKS
from autograder.grading import grade_class
from tests.golden import function_source, write_submission
from tests.submissions.mutants import resizing as mutants

pytestmark = pytest.mark.slow
NOTEBOOK = "03_progressive_resizing"
GRADE_IDS = {c.grade_id for c in CHECKS}

# Whole submissions: {name: (fills of solution cells, the checks they must lose)}. The seed student
# grew the batch size instead of the images, and says so in the multiple-choice answer.
SUBMISSIONS = {
    "seed_student": ({"what_grows_answer": f"what_grows = {mutants.SEED_WHAT_GROWS!r}\n",
                      "progressive_fit_solution": function_source(mutants.fit_grows_batch_size, "progressive_fit")},
                     {"what_grows", mutants.STAGES, mutants.BATCH}),
    "schedule_never_final": ({"size_schedule_solution": function_source(mutants.schedule_never_final, "size_schedule")},
                             {mutants.VALUES}),
    "fit_every_epoch": ({"progressive_fit_solution": function_source(mutants.fit_every_epoch, "progressive_fit")},
                        {mutants.STAGES}),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("class03")
    subs = root / "submissions"
    write_submission(subs / "reference", reference=True, notebooks=[NOTEBOOK])
    write_submission(subs / "blank", notebooks=[NOTEBOOK])
    for name, (fills, _) in SUBMISSIONS.items():
        write_submission(subs / name, {NOTEBOOK: fills}, reference=True, notebooks=[NOTEBOOK])
    return {r.student: r for r in grade_class(subs, root / "grading")}


def autograded(result):
    cells = {k.split(":", 1)[1]: v for k, v in result.scores.items() if k.startswith(NOTEBOOK + ":")}
    return {k: v for k, v in cells.items() if k in REGISTRY}


def test_every_check_of_the_notebook_is_graded(graded):
    assert set(autograded(graded["reference"])) == GRADE_IDS


def test_reference_earns_full_marks(graded):
    ref = graded["reference"]
    assert ref.status == "graded"
    scores = autograded(ref)
    assert all(v > 0 for v in scores.values()), scores


def test_blank_release_earns_nothing(graded):
    assert graded["blank"].status == "graded"
    assert sum(autograded(graded["blank"]).values()) == 0


@pytest.mark.parametrize("name", sorted(SUBMISSIONS))
def test_whole_mutant_loses_exactly_its_checks(graded, name):
    ref, mutant = autograded(graded["reference"]), autograded(graded[name])
    lost = {k for k in ref if mutant[k] != ref[k]}
    assert lost == SUBMISSIONS[name][1]
    assert all(mutant[k] == 0 for k in lost)

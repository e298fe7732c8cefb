"""Notebook 06_label_smoothing through the real pipeline: nbgrader autograde with the sandboxed
recorder and the trusted judge. The reference earns every autograded point, the blank release none,
and whole mutant submissions (the seed student's Q13 answer among them) lose exactly their checks."""
import inspect

import pytest

from autograder.checks import REGISTRY
from autograder.checks.label_smoothing import CHECKS
from autograder.grading import grade_class
from tests.golden import function_source, write_submission
from tests.submissions.mutants import label_smoothing as mutants

pytestmark = pytest.mark.slow
NOTEBOOK = "06_label_smoothing"
GRADE_IDS = {c.grade_id for c in CHECKS}


def mutant_source(fn, name: str) -> str:
    """A solution cell defining `name` as the mutant `fn`, with the argument-check helpers it calls."""
    helpers = "".join(inspect.getsource(h) + "\n\n" for h in (mutants._checked, mutants._checked_loss))
    return "import torch.nn.functional as F\n" + helpers + function_source(fn, name)


# Whole submissions: {name: (fills of solution cells, the checks they must lose)}. The seed student's
# Q13 answer goes with a smooth_targets that reproduces it (eps/10 off, the rest on index K - 1 - y).
SUBMISSIONS = {
    "seed_student": ({"q13_target_answer": f"q13_target = {mutants.SEED_Q13_ANSWER!r}\n",
                      "smooth_targets_solution": mutant_source(mutants.targets_seed_student, "smooth_targets")},
                     {"q13_target", "smooth_targets_values"}),
    "loss_smooths_logits": ({"label_smoothing_ce_solution": mutant_source(mutants.loss_smooths_logits, "label_smoothing_ce")},
                            set(mutants.LOSS_VALUE_CHECKS)),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("class06")
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

"""Notebook 04 (test-time augmentation) graded end to end by the real pipeline: nbgrader autograde,
the sandboxed recorder (five_crop_tta called on probe models built in the kernel), the trusted judge."""
import pytest

from autograder.golden.build import function_source
from tests.notebook_grading import NotebookGrading
from autograder.golden.mutants import tta as tta_mutants

pytestmark = pytest.mark.slow
NOTEBOOK = "04_test_time_augmentation"
# Whole submissions: the reference notebook with one function replaced by a catalog mutant, and the
# checks it must lose. Crops in another order do not change the average, so five_crop_tta (which calls
# the student's five_crop) keeps its points; averaged logits break only the values of five_crop_tta.
SUBMISSIONS = {
    # my_crop_corners is read off the student's own five_crop: crops in another order put it wrong too.
    "mutant_crop_order": ({"five_crop_solution": function_source(tta_mutants.crops_other_order, "five_crop")},
                          {"five_crop_values", "my_crop_corners"}),
    "mutant_mean_logits": ({"five_crop_tta_solution": function_source(tta_mutants.tta_mean_of_logits, "five_crop_tta")},
                           {"five_crop_tta_values"}),
}
# Four notebook runs keep this test near a minute; every other mutant is judged function by function
# (tests/test_mutants.py, tests/test_reference_tta.py).


class TestGradingTestTimeAugmentation(NotebookGrading):
    NOTEBOOK = NOTEBOOK
    SUBMISSIONS = SUBMISSIONS

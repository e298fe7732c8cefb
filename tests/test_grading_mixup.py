"""Notebook 05_mixup through the real pipeline: nbgrader autograde with the sandboxed recorder and the
trusted judge. The reference earns every autograded point, the blank release none, and whole submissions
(the seed student's Q8 answer `cbs=mixup` with a mixup that leaves the targets unmixed; a CutMix that
keeps lam after clipping with a box whose height and width are swapped) lose exactly their checks."""
import pytest

from autograder.golden.build import function_source
from tests.notebook_grading import NotebookGrading
from autograder.golden.mutants import mixup as mutants

pytestmark = pytest.mark.slow
NOTEBOOK = "05_mixup"

# Whole submissions: {name: (fills of solution cells, the checks they must lose)}. Each carries two
# independent mistakes, to keep the number of notebooks executed (each trains briefly) small.
SUBMISSIONS = {
    "seed_student": ({"q8_cbs_answer": f"q8_cbs = {mutants.SEED_Q8_ANSWER!r}\n",
                      "mixup_solution": function_source(mutants.mixup_images_only, "mixup")},
                     {"q8_cbs", "mixup_targets"}),
    "cutmix_mistakes": ({"cutmix_solution": function_source(mutants.cutmix_lam_not_recomputed, "cutmix"),
                         "rand_box_solution": function_source(mutants.box_swapped, "rand_box")},
                        {"cutmix_values", "rand_box_values"}),
}


class TestGradingMixup(NotebookGrading):
    NOTEBOOK = NOTEBOOK
    SUBMISSIONS = SUBMISSIONS

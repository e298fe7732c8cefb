"""Notebook 03_progressive_resizing through the real pipeline: nbgrader autograde with the sandboxed
recorder and the trusted judge. The reference earns every autograded point, the blank release none,
and whole mutant submissions (the seed student's growing batch size among them) lose exactly their checks."""
import pytest

from autograder.golden.build import function_source
from tests.notebook_grading import NotebookGrading
from autograder.golden.mutants import resizing as mutants

pytestmark = pytest.mark.slow
NOTEBOOK = "03_progressive_resizing"

# Whole submissions: {name: (fills of solution cells, the checks they must lose)}. The seed student
# grew the batch size instead of the images, and says so in the multiple-choice answer.
SUBMISSIONS = {
    "seed_student": ({"what_grows_answer": f"what_grows = {mutants.SEED_WHAT_GROWS!r}\n",
                      "progressive_fit_solution": function_source(mutants.fit_grows_batch_size, "progressive_fit")},
                     {"what_grows", mutants.STAGES, mutants.BATCH}),
    # my_schedule is worked out with the student's own size_schedule: a wrong one makes it wrong too.
    "schedule_never_final": ({"size_schedule_solution": function_source(mutants.schedule_never_final, "size_schedule")},
                             {mutants.VALUES, "my_schedule"}),
    "fit_every_epoch": ({"progressive_fit_solution": function_source(mutants.fit_every_epoch, "progressive_fit")},
                        {mutants.STAGES}),
}


class TestGradingProgressiveResizing(NotebookGrading):
    NOTEBOOK = NOTEBOOK
    SUBMISSIONS = SUBMISSIONS

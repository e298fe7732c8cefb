"""Notebook 06_label_smoothing through the real pipeline: nbgrader autograde with the sandboxed
recorder and the trusted judge. The reference earns every autograded point, the blank release none,
and whole mutant submissions (the seed student's Q13 answer among them) lose exactly their checks."""
import inspect

import pytest
import torch

from autograder.reference import label_smoothing as ref
from autograder.golden.build import function_source
from tests.notebook_grading import NotebookGrading
from autograder.golden.mutants import label_smoothing as mutants
from workbook import variants

pytestmark = pytest.mark.slow
NOTEBOOK = "06_label_smoothing"


def mutant_source(fn, name: str) -> str:
    """A solution cell defining `name` as the mutant `fn`, with the argument-check helpers it calls."""
    helpers = "".join(inspect.getsource(h) + "\n\n" for h in (mutants._checked, mutants._checked_loss))
    return "import torch.nn.functional as F\n" + helpers + function_source(fn, name)


def target_of(student: str) -> list[float]:
    """The right Q13 target for `student`'s parameters, from the reference smooth_targets."""
    p = variants.parameters("q13", student)
    return ref.smooth_targets(torch.tensor([p["index"]]), p["n_classes"], p["eps"], dtype=torch.float64)[0].tolist()


# Whole submissions: {name: (fills of solution cells, the checks they must lose)}. The seed student's
# Q13 answer goes with a smooth_targets that reproduces it (eps/10 off, the rest on index K - 1 - y).
SUBMISSIONS = {
    "seed_student": ({"q13_target_answer": f"q13_target = {mutants.SEED_Q13_ANSWER!r}\n",
                      "smooth_targets_solution": mutant_source(mutants.targets_seed_student, "smooth_targets")},
                     {"q13_target", "smooth_targets_values"}),
    # A classmate's right answer, typed in as numbers: right for the reference student's parameters only.
    "q13_copier": ({"q13_target_answer": f"q13_target = {target_of('reference')!r}\n"}, {"q13_target"}),
    "loss_smooths_logits": ({"label_smoothing_ce_solution": mutant_source(mutants.loss_smooths_logits, "label_smoothing_ce")},
                            set(mutants.LOSS_VALUE_CHECKS)),
    # A shortcut that forgets `reduction` at eps = 0: only the eps = 0 inputs with "sum"/"none" catch it.
    "plain_ce_at_eps_zero": ({"label_smoothing_ce_solution": mutant_source(mutants.loss_plain_ce_at_eps_zero,
                                                                           "label_smoothing_ce")},
                             {mutants.L_REDUCTIONS}),
}


class TestGradingLabelSmoothing(NotebookGrading):
    NOTEBOOK = NOTEBOOK
    SUBMISSIONS = SUBMISSIONS

    def test_a_copied_answer_is_named_as_such(self, graded, class_root):
        assert variants.parameters("q13", "q13_copier") != variants.parameters("q13", "reference")
        shown = self.verdict(class_root, "q13_copier", "q13_target")
        assert "fits other parameters" in shown
        assert variants.describe(variants.parameters("q13", "reference")) in shown
        assert variants.describe(variants.parameters("q13", "q13_copier")) in shown

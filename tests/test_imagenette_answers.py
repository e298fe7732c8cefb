"""The answer checks of 01_imagenette: right answers pass; the seed student's answers and wrong forms fail."""
import nbformat
import pytest
import torch

from autograder.rubric import REGISTRY, seed_for
from autograder.rubric.imagenette import ITEMS, choice
from autograder.config import ASSIGNMENT, REPO_ROOT
from autograder.judge import record_in_process
from workbook.checks import expect_equal, expect_one_of

RELEASE = REPO_ROOT / "release" / ASSIGNMENT

SEED = seed_for("tests", "ada", "imagenette")
GRADE_IDS = {"imagenet_is", "why_imagenette_first", "first_prototype_step"}


def verdict(grade_id, value):
    return record_in_process(REGISTRY[grade_id], value, SEED)


def test_the_notebook_checks_are_registered_as_answer_checks():
    assert {c.grade_id for c in ITEMS} == GRADE_IDS
    for grade_id in GRADE_IDS:
        check = REGISTRY[grade_id]
        assert check.value_answer is not None and check.target == "" and check.make_cases is None


@pytest.mark.parametrize("answer", ["data set", "dataset", "Data Set", "  dataset ", "a data set", "The Dataset"])
def test_imagenet_is_a_data_set(answer):
    result = verdict("imagenet_is", answer)
    assert result.passed, result.message


@pytest.mark.parametrize("answer", ["model", "Model", "a model", "architecture", "library"])
def test_imagenet_is_not_a_model(answer):
    result = verdict("imagenet_is", answer)
    assert not result.passed
    assert result.message == f"the answer {answer.strip()!r} is not right"


@pytest.mark.parametrize("answer", ["a computer vision model", "an image dataset", "competition", "", "a"])
def test_imagenet_is_refuses_what_is_not_an_offered_string(answer):
    result = verdict("imagenet_is", answer)
    assert not result.passed
    assert result.message.startswith('expected one of "model", "data set", "architecture", "library"')


def _visible_test(notebook: str, grade_id: str, name: str, value) -> bool:
    """Run the release notebook's visible test of `grade_id` with the student's variable set to `value`."""
    nb = nbformat.read(RELEASE / f"{notebook}.ipynb", as_version=4)
    source = next(c.source for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id)
    try:
        exec(source, {"expect_one_of": expect_one_of, "expect_equal": expect_equal, name: value})
    except AssertionError:
        return False
    return True


# The visible test and the judge agree on which answers have a valid form (the judge then says whether it
# is right): one owner of the comparison, `workbook.checks.normal_answer`.
@pytest.mark.parametrize("notebook, grade_id, name", [("01_imagenette", "imagenet_is", "imagenet_is"),
                                                      ("04_test_time_augmentation", "tta_speed", "tta_speed")])
@pytest.mark.parametrize("answer", ["data set", "a Dataset", "an image dataset", "model", "the model", " Slower ",
                                    "faster", "the same", "", "library", 3, None])
def test_visible_test_and_judge_agree_on_valid_forms(notebook, grade_id, name, answer):
    message = verdict(grade_id, answer).message
    judged_valid = not message.startswith(("expected one of", "expected the answer as a string"))
    assert _visible_test(notebook, grade_id, name, answer) == judged_valid, message


@pytest.mark.parametrize("answer", [None, 1, ["data set"], ("data set",), b"data set", {"answer": "data set"}])
def test_imagenet_is_refuses_other_types(answer):
    result = verdict("imagenet_is", answer)
    assert not result.passed
    assert result.message.startswith("expected the answer as a string")


@pytest.mark.parametrize("grade_id, right", [("why_imagenette_first", "b"), ("first_prototype_step", "c")])
@pytest.mark.parametrize("form", ["{}", " {} ", "({})", "{})", "( {} )"])
def test_multiple_choice_right_letter_in_any_form(grade_id, right, form):
    for letter in (right, right.upper()):
        result = verdict(grade_id, form.format(letter))
        assert result.passed, result.message


# Option (a) of why_imagenette_first is the seed student's answer: "Imagenette for training from scratch,
# ImageNet for transfer learning".
@pytest.mark.parametrize("grade_id, wrong", [("why_imagenette_first", w) for w in "acd"]
                         + [("first_prototype_step", w) for w in "abd"])
def test_multiple_choice_wrong_letters_fail(grade_id, wrong):
    for answer in (wrong, wrong.upper(), f"({wrong})"):
        result = verdict(grade_id, answer)
        assert not result.passed
        assert result.message == f"the answer {wrong!r} is not right"


@pytest.mark.parametrize("grade_id", ["why_imagenette_first", "first_prototype_step"])
@pytest.mark.parametrize("answer", ["e", "", "bc", "b and c", "iteration speed",
                                    "Imagenette for training from scratch, ImageNet for transfer learning"])
def test_multiple_choice_refuses_what_is_not_one_letter(grade_id, answer):
    result = verdict(grade_id, answer)
    assert not result.passed
    assert result.message.startswith('expected one letter ("a", "b", "c", "d")')


@pytest.mark.parametrize("grade_id", ["why_imagenette_first", "first_prototype_step"])
@pytest.mark.parametrize("answer", [None, 2, 1.0, ["b"], ("c",), torch.tensor(1)])
def test_multiple_choice_refuses_other_types(grade_id, answer):
    result = verdict(grade_id, answer)
    assert not result.passed
    assert result.message.startswith('expected one letter as a string')


def test_choice_rejects_a_correct_letter_outside_the_options():
    with pytest.raises(ValueError):
        choice("e")

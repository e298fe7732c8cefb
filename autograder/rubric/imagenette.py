"""Rubric items of the Imagenette notebook (01_imagenette): answer cells only, no function.

The answers are judged here, in the grader's process; the notebook's visible tests only check that
an answer has the expected form (a string from the offered options), never which option is right.
"""
from autograder.rubric.core import RubricItem, answer_in, describe_received


def choice(correct: str, letters: str = "abcd"):
    """A `value_answer` for a multiple-choice question answered with one letter.

    "b", "B", " b ", "(b)" and "b)" are the same answer; anything that is not one of `letters`
    is refused with a message that says which form is expected, without naming the right one.
    """
    if correct not in letters:
        raise ValueError(f"the correct letter {correct!r} is not one of the options {letters!r}")
    shown = ", ".join(f'"{letter}"' for letter in letters)

    def value_answer(received) -> str | None:
        if not isinstance(received, str):
            return f"expected one letter as a string ({shown}), received {describe_received(received)}"
        letter = received.strip().lower().removeprefix("(").removesuffix(")").strip()
        if len(letter) != 1 or letter not in letters:
            return f"expected one letter ({shown}), received {received.strip()[:40]!r}"
        if letter != correct:
            return f"the answer {letter!r} is not right"
        return None
    return value_answer


# ImageNet (ILSVRC) is a collection of labelled images. The notebook offers these four strings; any
# spelling `workbook.checks.normal_answer` maps to one of them is that answer ("a dataset", "Data Set").
IMAGENET_IS_OPTIONS = ["model", "data set", "architecture", "library"]

ITEMS = [
    RubricItem("imagenet_is", "ImageNet is a data set (models are trained on it; it is not itself a model)",
          value_answer=answer_in({"data set"}, IMAGENET_IS_OPTIONS), exercise="imagenet_is"),
    RubricItem("why_imagenette_first", "ideas are tried on Imagenette first because its experiments take minutes, "
          "not days; the promising ones are then confirmed on ImageNet",
          value_answer=choice("b"), exercise="why_imagenette_first"),
    RubricItem("first_prototype_step", "the first step of prototyping is to get one experiment down to a couple of "
          "minutes: a subset of the data, smaller images, a smaller model",
          value_answer=choice("c"), exercise="first_prototype_step"),
]

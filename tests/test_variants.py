"""Per-student parameters (workbook/variants.py) and the checks that judge answers against them.

The expected answers here come from the reference package (smooth_targets, size_schedule, five_crop),
not from the checks' own formulas, so a wrong formula in a check fails these tests.
"""
import os
import subprocess
import sys

import pytest
import torch

from autograder.rubric import REGISTRY
from autograder.judge import record_in_process
from autograder.reference import label_smoothing as ref_ls
from autograder.reference import resizing as ref_resizing
from autograder.reference import tta as ref_tta
from workbook import variants

STUDENTS = [f"student{i:03d}" for i in range(300)] + ["alice", "bob", "reference", variants.FIXED_ID]


def q13_answer(p: dict) -> list[float]:
    return ref_ls.smooth_targets(torch.tensor([p["index"]]), p["n_classes"], p["eps"], dtype=torch.float64)[0].tolist()


def schedule_answer(p: dict) -> list[int]:
    return ref_resizing.size_schedule(p["start"], p["final"], p["n_epochs"], p["step"])


def crop_answer(p: dict) -> list[tuple[int, int]]:
    numbered = torch.arange(p["height"] * p["width"]).reshape(1, 1, p["height"], p["width"])
    return [divmod(int(c[0, 0, 0, 0]), p["width"]) for c in ref_tta.five_crop(numbered, p["size"])]


# {grade id: (the variants question, the right answer for a parameter set)}
ANSWERS = {"q13_target": ("q13", q13_answer), "my_schedule": ("schedule", schedule_answer),
           "my_crop_corners": ("crop", crop_answer)}


def test_every_per_student_check_is_listed_here():
    assert {gid for gid, check in REGISTRY.items() if check.variant} == set(ANSWERS)


@pytest.mark.parametrize("question", sorted(variants.QUESTIONS))
def test_parameters_are_spread_and_never_a_printed_example(question):
    given = [variants.parameters(question, s) for s in STUDENTS]
    assert all(p in variants.space(question) and p not in variants.EXAMPLES[question] for p in given)
    distinct = {tuple(sorted(p.items())) for p in given}
    # 304 ids over 311-358 options: a hash that ignored the id, or most of it, would give far fewer.
    assert len(distinct) > 150, len(distinct)
    assert all(e in variants.space(question) for e in variants.EXAMPLES[question])


def test_parameters_depend_on_the_question_and_are_stable_across_processes():
    assert variants.parameters("q13", "alice") != variants.parameters("q13", "bob")
    code = "from workbook import variants; print([variants.parameters(q, 'alice') for q in sorted(variants.QUESTIONS)])"
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")}
    assert runs == {repr([variants.parameters(q, "alice") for q in sorted(variants.QUESTIONS)]) + "\n"}


def test_bad_question_or_student_id_is_named():
    with pytest.raises(KeyError, match="no question 'q99'"):
        variants.parameters("q99", "alice")
    with pytest.raises(ValueError, match="non-empty string"):
        variants.parameters("q13", "  ")


def test_student_id_comes_from_the_grader_then_the_hub_then_the_fixed_id():
    assert variants.student_id({"WORKBOOK_STUDENT": "carol", "JUPYTERHUB_USER": "hubuser"}) == "carol"
    assert variants.student_id({"JUPYTERHUB_USER": "hubuser"}) == "hubuser"
    assert variants.student_id({"WORKBOOK_STUDENT": " ", "JUPYTERHUB_USER": ""}) == variants.FIXED_ID
    assert variants.student_id({}) == variants.FIXED_ID


def test_the_notebook_shows_the_student_their_own_numbers(capsys):
    shown = variants.my_parameters("q13", {"JUPYTERHUB_USER": "bob"})
    out = capsys.readouterr().out
    assert shown == variants.parameters("q13", "bob")
    assert "'bob'" in out and variants.describe(shown) in out and "No student id" not in out
    variants.my_parameters("q13", {})
    assert "No student id is set" in capsys.readouterr().out


@pytest.mark.parametrize("grade_id", sorted(ANSWERS))
def test_own_answer_passes_and_a_classmates_fails_naming_the_other_parameters(grade_id):
    question, answer = ANSWERS[grade_id]
    check = REGISTRY[grade_id]
    copied_any = False
    for student in ("alice", "bob", "reference", "student007", "student123"):
        own = variants.parameters(question, student)
        assert record_in_process(check, answer(own), 0, student=student).passed, (grade_id, student)
        for classmate in ("student001", "student002", "student003", "student004"):
            theirs = variants.parameters(question, classmate)
            if answer(theirs) == answer(own):
                continue          # (crop) the same corners for another image of the same margins
            verdict = record_in_process(check, answer(theirs), 0, student=student)
            assert not verdict.passed
            assert "fits other parameters" in verdict.message and variants.describe(own) in verdict.message
            copied_any = True
    assert copied_any


def test_printed_answers_are_recognised():
    book = [0.02, 0.92, 0.02, 0.02, 0.02]       # the book's Q13: five classes, eps = 0.1, index 1
    verdict = record_in_process(REGISTRY["q13_target"], book, 0, student="alice")
    assert not verdict.passed and "the printed example" in verdict.message
    shown = ref_resizing.size_schedule(32, 64, 6, 16)
    verdict = record_in_process(REGISTRY["my_schedule"], shown, 0, student="alice")
    assert not verdict.passed and "the printed example" in verdict.message


def test_honest_mistakes_get_their_reason():
    p = variants.parameters("q13", "alice")
    k, eps, index = p["n_classes"], p["eps"], p["index"]
    one_hot = [float(i == index) for i in range(k)]
    verdict = record_in_process(REGISTRY["q13_target"], one_hot, 0, student="alice")
    assert not verdict.passed and "one-hot" in verdict.message
    other_convention = [1 - eps if i == index else eps / (k - 1) for i in range(k)]
    verdict = record_in_process(REGISTRY["q13_target"], other_convention, 0, student="alice")
    assert not verdict.passed and "eps/(K-1)" in verdict.message
    verdict = record_in_process(REGISTRY["q13_target"], "0.1", 0, student="alice")
    assert not verdict.passed and f"expected {k} numbers" in verdict.message

    c = next(variants.parameters("crop", s) for s in STUDENTS
             if (variants.parameters("crop", s)["height"] - variants.parameters("crop", s)["size"]) % 4 == 3)
    floored = crop_answer(c)[:4] + [((c["height"] - c["size"]) // 2, (c["width"] - c["size"]) // 2)]
    student = next(s for s in STUDENTS if variants.parameters("crop", s) == c)
    verdict = record_in_process(REGISTRY["my_crop_corners"], floored, 0, student=student)
    assert not verdict.passed and "the centre crop starts at" in verdict.message

    s = variants.parameters("schedule", "alice")
    verdict = record_in_process(REGISTRY["my_schedule"], [s["start"]] * s["n_epochs"], 0, student="alice")
    assert not verdict.passed and "is not" in verdict.message
    verdict = record_in_process(REGISTRY["my_schedule"], [float(v) for v in schedule_answer(s)], 0, student="alice")
    assert not verdict.passed and "list of ints" in verdict.message

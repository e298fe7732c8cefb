"""Function-level golden submissions judged directly (fast): the reference passes every check, and
each realistic mutant loses exactly the checks it breaks."""
import importlib
import pkgutil

import pytest

import autograder.reference
import autograder.golden.mutants
from autograder.rubric import REGISTRY, seed_for
from autograder.judge import record_in_process
from autograder.golden.mutants import normalization as normalization_mutants


def _modules(package):
    return [importlib.import_module(f"{package.__name__}.{m.name}") for m in pkgutil.iter_modules(package.__path__)]


# Every exercise function of every reference module, and every mutant of every concept.
REFERENCES = {name: getattr(m, name) for m in _modules(autograder.reference) for name in m.__all__}
MUTANTS = [mutant for m in _modules(autograder.golden.mutants) for mutant in m.MUTANTS]
SEEDS = [seed_for("tests", student, "x") for student in ("ada", "grace")]


def checks_of(target: str):
    return [c for c in REGISTRY.values() if c.target == target]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("check", [c for c in REGISTRY.values() if c.target in REFERENCES], ids=lambda c: c.grade_id)
def test_reference_passes(check, seed):
    verdict = record_in_process(check, REFERENCES[check.target], seed)
    assert verdict.passed, verdict.message


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: f"{m.target}: {m.name}")
def test_mutant_loses_exactly_the_checks_it_breaks(mutant):
    checks = checks_of(mutant.target)
    assert mutant.breaks <= {c.grade_id for c in checks}, "a mutant names a check of another function"
    failed = {c.grade_id for c in checks if not record_in_process(c, mutant.fn, SEEDS[0]).passed}
    assert failed == set(mutant.breaks)


def test_failure_message_shows_input_expected_and_received():
    check = REGISTRY["channel_stats_values"]
    verdict = record_in_process(check, normalization_mutants.stats_unbiased, SEEDS[0])
    assert not verdict.passed
    assert "tensor of shape" in verdict.message and "expected [" in verdict.message and "received [" in verdict.message


def test_value_answers_judged():
    check = REGISTRY["fastai_setup_batches"]
    assert record_in_process(check, 1, 0).passed
    for wrong in (2, "1", None, [1]):
        assert not record_in_process(check, wrong, 0).passed


def test_every_check_has_a_description_and_either_function_or_answer():
    for check in REGISTRY.values():
        assert check.description
        assert (check.value_answer is None) == bool(check.target), check.grade_id


@pytest.mark.parametrize("mutant", [m for m in MUTANTS if m.target.isidentifier()], ids=lambda m: f"{m.target}: {m.name}")
def test_mutant_source_as_a_student_writes_it_behaves_the_same(mutant):
    """Whole golden submissions paste `function_source` into the notebook: it must be self-contained."""
    from autograder.golden.build import function_source

    namespace = {}
    exec(function_source(mutant.fn, mutant.target), namespace)
    failed = {c.grade_id for c in checks_of(mutant.target)
              if not record_in_process(c, namespace[mutant.target], SEEDS[0]).passed}
    assert failed == set(mutant.breaks)


class BadArgument(ValueError, TypeError):
    """Passes for both kinds of argument error an error check asks for."""


def _always_raises(*args, **kwargs):
    raise BadArgument("every argument is bad")


@pytest.mark.parametrize("check", [c for c in REGISTRY.values() if c.target and c.judge_case is None],
                         ids=lambda c: c.grade_id)
def test_a_function_that_always_raises_earns_no_error_check(check):
    """Error checks carry valid inputs too: raising on everything is not checking arguments."""
    verdict = record_in_process(check, _always_raises, SEEDS[0])
    assert not verdict.passed
    assert "a valid input" in verdict.message

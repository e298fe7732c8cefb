"""Rubric items of the progressive resizing notebook (03_progressive_resizing).

`size_schedule` is called directly on grader-made arguments. `progressive_fit` trains a Learner, which
the grader cannot hand to a submission; its hidden cells record
``lambda sizes, lr, bs: run_learner_probe(progressive_fit, sizes, lr, bs)``: the kernel gives the
student's function a ProbeLearner (workbook.probes) that trains nothing and logs each `dls` it is given
and each fit call, and the judge compares that log with the reference's on the same probe.
"""
import math

import torch

from autograder.rubric.core import Case, RubricItem, describe_received, fits_other_parameters
from autograder.rubric.imagenette import choice
from autograder.reference import resizing as ref
from workbook.probes import run_learner_probe
from workbook.recording_format import MALFORMED

PROBE_TARGET = "progressive_fit, called on a probe learner by workbook.probes.run_learner_probe"


def _schedule_case(start, final, n_epochs, step) -> Case:
    return Case(args=(start, final, n_epochs, step),
                label=f"size_schedule(start={start!r}, final={final!r}, n_epochs={n_epochs!r}, step={step!r})")


def schedule_value_cases(g: torch.Generator) -> list[Case]:
    # Fixed cases cover the rules (one epoch, equal ends, a tie, step 1); random ones vary the numbers.
    cases = [_schedule_case(32, 64, 6, 16), _schedule_case(64, 64, 3, 32), _schedule_case(32, 128, 1, 32),
             _schedule_case(32, 64, 5, 16), _schedule_case(128, 224, 2, 32), _schedule_case(20, 27, 8, 1),
             _schedule_case(96, 256, 11, 32)]
    for _ in range(4):
        step = [8, 16, 32][int(torch.randint(0, 3, (1,), generator=g))]
        start = step * int(torch.randint(1, 6, (1,), generator=g))
        final = start + step * int(torch.randint(0, 9, (1,), generator=g))
        cases.append(_schedule_case(start, final, int(torch.randint(2, 13, (1,), generator=g)), step))
    return cases


def schedule_error_cases(g: torch.Generator) -> list[Case]:
    n = int(torch.randint(3, 9, (1,), generator=g))
    bad = lambda start, final, n_epochs, step, why: Case(  # noqa: E731
        args=(start, final, n_epochs, step), label=f"size_schedule({start!r}, {final!r}, {n_epochs!r}, {step!r}) ({why})",
        raises=(ValueError,))
    return [bad(128, 64, n, 32, "start larger than final"),
            bad(32, 64, 0, 16, "no epochs"),
            bad(40, 64, n, 16, "start is not a multiple of step"),
            bad(32, 72, n, 16, "final is not a multiple of step"),
            bad(32, 64, n, 0, "step 0"),
            bad(-32, 64, n, 16, "a negative size")]


def _fit_case(sizes: list[int], lr: float, bs: int) -> Case:
    return Case(args=(sizes, lr, bs), label=f"sizes={sizes}, lr={lr}, a probe learner whose dls.bs is {bs}")


def fit_cases(g: torch.Generator) -> list[Case]:
    cases = [_fit_case([32, 32, 48, 48, 64, 64], 1e-2, 64), _fit_case([128], 3e-3, 32),
             _fit_case([64, 64, 64], 1e-3, 16), _fit_case([16, 24, 24, 24, 32], 2e-2, 128)]
    for _ in range(2):
        start = 16 * int(torch.randint(1, 4, (1,), generator=g))
        final = start + 16 * int(torch.randint(1, 5, (1,), generator=g))
        n = int(torch.randint(2, 9, (1,), generator=g))
        bs = [16, 32, 64, 256][int(torch.randint(0, 4, (1,), generator=g))]
        cases.append(_fit_case(ref.size_schedule(start, final, n, 16), round(float(torch.rand(1, generator=g)) * 0.05 + 1e-3, 5), bs))
    return cases


def _expected_schedule(case: Case):
    return ref.size_schedule(*case.args)


def judge_schedule(case: Case, expected, received, after, device: str) -> str | None:
    if not isinstance(received, list) or not all(type(v) is int for v in received):
        return f"with {case.label}: expected a list of ints, received {describe_received(received)}"
    if received == expected:
        return None
    start, final, _, step = case.args
    reasons = []
    if len(received) != len(expected):
        reasons.append(f"{len(received)} sizes for {len(expected)} epochs")
    if any(b < a for a, b in zip(received, received[1:])):
        reasons.append("the sizes decrease somewhere (progressive resizing grows the images)")
    if received and received[-1] != final:
        reasons.append(f"the last epoch is at {received[-1]}, not at the final size {final}")
    if any(v % step for v in received):
        reasons.append(f"not every size is a multiple of step={step}")
    why = "; ".join(reasons) or "the sizes are not the rounded linear interpolation"
    return f"with {case.label}: expected {expected}, received {received} ({why})"


def _expected_fit(case: Case) -> dict:
    return run_learner_probe(ref.progressive_fit, *case.args)


def _fit_report(case: Case, received):
    if not isinstance(received, dict) or not {"output", "calls"} <= set(received):
        return None, f"with {case.label}: {MALFORMED}"
    calls = received["calls"]
    if not isinstance(calls, list) or not all(isinstance(c, list) and len(c) == 3 for c in calls):
        return None, f"with {case.label}: {MALFORMED}"
    return calls, None


def _same_number(a, b) -> bool:
    return type(a) in (int, float) and type(b) in (int, float) and math.isclose(a, b, rel_tol=1e-9, abs_tol=0)


def _stage_view(calls: list) -> list[tuple]:
    """The calls without batch sizes: what each stage trains on and how."""
    return [(c[0], c[1]) if c[0] in ("make_dls", "dls") else (c[0], c[1], c[2]) for c in calls]


def _describe_calls(calls: list, limit: int = 8) -> str:
    def one(c):
        if c[0] == "make_dls":
            return f"make_dls({c[1]}, bs={c[2]})"
        if c[0] == "dls":
            return f"learn.dls = <size {c[1]}>"
        return f"learn.{c[0]}({c[1]}, {c[2]})"
    shown = ", ".join(one(c) for c in calls[:limit])
    return f"[{shown}{', ...' if len(calls) > limit else ''}]" if calls else "no calls"


def _as_stages(value):
    if isinstance(value, (list, tuple)) and all(isinstance(s, (list, tuple)) and len(s) == 2 for s in value):
        return [tuple(s) for s in value]
    return None


def judge_fit_stages(case: Case, expected, received, after, device: str) -> str | None:
    calls, reason = _fit_report(case, received)
    if reason:
        return reason
    want = _stage_view(expected["calls"])
    got = _stage_view(calls)
    same = len(got) == len(want) and all(
        g[0] == w[0] and all(_same_number(a, b) for a, b in zip(g[1:], w[1:])) for g, w in zip(got, want))
    if not same:
        hint = ""
        if any(c[0] in ("fit", "fine_tune") for c in calls):
            hint = " (train each stage with learn.fit_one_cycle(n_epochs, lr))"
        elif [c[1] for c in calls if c[0] == "make_dls"] and len({c[1] for c in calls if c[0] == "make_dls"}) == 1 \
                and len({c[1] for c in expected["calls"] if c[0] == "make_dls"}) > 1:
            hint = " (the image size never changes: pass each stage's size to make_dls)"
        return (f"with {case.label}: expected the calls {_describe_calls(expected['calls'])}, "
                f"received {_describe_calls(calls)}{hint}")
    stages = _as_stages(received["output"])
    if stages != expected["output"]:
        return (f"with {case.label}: expected the return value {expected['output']} (the stages as (size, epochs)), "
                f"received {describe_received(received['output'])}")
    return None


def judge_fit_batch_size(case: Case, expected, received, after, device: str) -> str | None:
    calls, reason = _fit_report(case, received)
    if reason:
        return reason
    bs = case.args[2]
    made = [c for c in calls if c[0] == "make_dls"]
    if not made:
        return f"with {case.label}: make_dls was never called, received {_describe_calls(calls)}"
    wrong = [c for c in made if c[2] != bs]
    if wrong:
        return (f"with {case.label}: make_dls was called with bs={wrong[0][2]} for size {wrong[0][1]}; keep the "
                f"learner's batch size {bs} (the image size grows, not the batch size)")
    return None


def _schedule_of(params: dict) -> list[int]:
    return ref.size_schedule(params["start"], params["final"], params["n_epochs"], params["step"])


def my_schedule_answer(received, params: dict) -> str | None:
    """Judge the student's own schedule (workbook.variants "schedule") against the reference's."""
    call = f"size_schedule({params['start']}, {params['final']}, {params['n_epochs']}, {params['step']})"
    if not isinstance(received, list) or not all(type(v) is int for v in received):
        return f"expected the list of ints {call} returns, received {describe_received(received)}"
    if received == _schedule_of(params):
        return None
    copied = fits_other_parameters("schedule", params, lambda other: _schedule_of(other) == received)
    return copied or f"{call} is not {received}"


ITEMS = [
    RubricItem("size_schedule_values", "size_schedule gives each epoch the linear interpolation from start to final, "
          "rounded to the nearest multiple of step", "size_schedule", make_cases=schedule_value_cases,
          expected=_expected_schedule, judge_case=judge_schedule, exercise="size_schedule"),
    RubricItem("size_schedule_errors", "size_schedule rejects a shrinking schedule, no epochs, sizes off the step "
          "and a step below 1", "size_schedule", make_cases=schedule_error_cases, exercise="size_schedule"),
    RubricItem("progressive_fit_stages", "progressive_fit gives the learner DataLoaders of each stage's size, then "
          "trains that stage with fit_one_cycle, and returns the stages", PROBE_TARGET, make_cases=fit_cases,
          expected=_expected_fit, judge_case=judge_fit_stages, exercise="progressive_fit"),
    RubricItem("progressive_fit_batch_size", "progressive_fit keeps the learner's batch size: the images grow, "
          "not the batches", PROBE_TARGET, make_cases=fit_cases, expected=_expected_fit,
          judge_case=judge_fit_batch_size, exercise="progressive_fit"),
    RubricItem("my_schedule", "my_schedule holds the size of each epoch of your own schedule",
          value_answer=my_schedule_answer, variant="schedule", exercise="my_schedule"),
    RubricItem("what_grows", "in progressive resizing the image size grows from stage to stage (not the batch size)",
          value_answer=choice("b"), exercise="what_grows"),
]

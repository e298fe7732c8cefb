"""Per-student parameters of the questions whose answer is a computed value.

Each such question has a small space of parameter sets; a student's set is chosen from it by hashing
the student's id with the question's name and a course salt. The choice is pure and stable: the
notebook shows the student the same numbers the grader later checks against, and a classmate's
answer, worked out for other numbers, does not fit.

Who the student is: `WORKBOOK_STUDENT` (set by the grader to the id the submission is filed under, and
by `make lab` to the id typed the first time), else `JUPYTERHUB_USER` (JupyterHub's user name), else the
fixed id `FIXED_ID` that the master notebooks and the tests use.
"""
import hashlib
import os

__all__ = ["FIXED_ID", "QUESTIONS", "EXAMPLES", "student_id", "parameters", "space", "choices", "describe",
           "my_parameters"]

SALT = "sizing-and-tta variants 2026"
STUDENT_ENV = "WORKBOOK_STUDENT"
HUB_ENV = "JUPYTERHUB_USER"
FIXED_ID = "master"

EPSILONS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3)


def _q13_space() -> list[dict]:
    return [{"n_classes": k, "eps": eps, "index": i} for k in range(3, 11) for eps in EPSILONS for i in range(k)]


def _schedule_space() -> list[dict]:
    return [{"start": step * a, "final": step * (a + b), "n_epochs": n, "step": step}
            for step in (8, 16, 32) for a in range(1, 5) for b in range(2, 7) for n in range(4, 10)]


def _crop_space() -> list[dict]:
    return [{"height": h, "width": w, "size": s} for h in range(9, 17) for w in range(9, 17) for s in range(4, 9)]


QUESTIONS = {"q13": _q13_space, "schedule": _schedule_space, "crop": _crop_space}
# Parameters whose answers are in print (the book's Q13, the schedules the notebook's visible tests spell
# out): in the space, so a copied printed answer is recognised, but never given to a student.
EXAMPLES = {"q13": [{"n_classes": 5, "eps": 0.1, "index": 1}],
            "schedule": [{"start": 32, "final": 64, "n_epochs": 6, "step": 16},
                         {"start": 32, "final": 64, "n_epochs": 5, "step": 16}],
            "crop": []}


def space(question: str) -> list[dict]:
    """Every parameter set of `question` an answer may have been worked out for, examples included."""
    if question not in QUESTIONS:
        raise KeyError(f"no question {question!r} has per-student parameters; known: {', '.join(QUESTIONS)}")
    return QUESTIONS[question]()


def choices(question: str) -> list[dict]:
    """The parameter sets a student can be given: the space without the printed examples."""
    return [p for p in space(question) if p not in EXAMPLES[question]]


def parameters(question: str, student: str) -> dict:
    """The parameter set of `student` for `question`: the same for every call, anywhere."""
    if not isinstance(student, str) or not student.strip():
        raise ValueError(f"a student id is a non-empty string, got {student!r}")
    options = choices(question)
    digest = hashlib.sha256(f"{SALT}\0{student.strip()}\0{question}".encode()).digest()
    return dict(options[int.from_bytes(digest[:8], "big") % len(options)])


def student_id(environ=None) -> str:
    """The id of the student working in this kernel (see the module docstring for the order)."""
    env = os.environ if environ is None else environ
    for name in (STUDENT_ENV, HUB_ENV):
        value = env.get(name, "").strip()
        if value:
            return value
    return FIXED_ID


def describe(params: dict) -> str:
    """'n_classes = 7, eps = 0.15, index = 4'."""
    return ", ".join(f"{name} = {value}" for name, value in params.items())


def my_parameters(question: str, environ=None) -> dict:
    """Print and return this student's parameters for `question`."""
    env = os.environ if environ is None else environ
    student = student_id(env)
    print(f"Your numbers for this question (student id {student!r}): {describe(parameters(question, student))}")
    if student == FIXED_ID and not any(env.get(name, "").strip() for name in (STUDENT_ENV, HUB_ENV)):
        print(f"No student id is set, so these are the example numbers of id {FIXED_ID!r}. Start JupyterLab "
              f"with `make lab` (it asks for your id once) or set {STUDENT_ENV} to the id your instructor "
              "files your work under, then restart the kernel: your work is graded with your own numbers.")
    return parameters(question, student)

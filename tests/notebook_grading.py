"""One notebook graded end to end by the real pipeline (nbgrader autograde, the sandboxed recorder,
the trusted judge), shared by the tests/test_grading_<concept>.py modules.

A module subclasses `NotebookGrading` as `TestGrading...` and sets `NOTEBOOK` and `SUBMISSIONS`
({name: (fills of solution cells, the checks that submission must lose)}). The class grades one
class of students: the reference (every autograded point), the blank release (none) and each whole
submission, the reference notebook with the given cells replaced. One notebook grades at a time (`jobs=1`):
the other pytest worker keeps the second core busy, and with two kernels per core the notebooks' kernels
used 9% more CPU in all (360 against 327 CPU-s, one suite run each). tests/test_parallel_grading.py shows
that parallel grading gives exactly the grades of serial grading.
"""
import nbformat
import pytest

from autograder.rubric import REGISTRY
from autograder.config import ASSIGNMENT, REPO_ROOT
from autograder.grading import grade_class
from autograder.golden.build import write_submission
from autograder.experiment_cells import experiment_ids
from autograder.pipeline import NOT_RUN
from autograder.time_limits import read_cells


def autograded_points(notebook: str) -> dict[str, float]:
    """{grade id: points} of the notebook's autograded cells, from its source."""
    cells = nbformat.read(REPO_ROOT / "source" / ASSIGNMENT / f"{notebook}.ipynb", as_version=4).cells
    grades = [c.metadata.get("nbgrader", {}) for c in cells]
    return {g["grade_id"]: g["points"] for g in grades if g.get("grade") and g.get("grade_id") in REGISTRY}


def assert_runs_without_experiments(grading_root, student: str, notebook: str) -> None:
    """In `student`'s autograded `notebook`, the master's experiment cells say they did not run, and every other
    code cell ran without an error."""
    master = REPO_ROOT / "source" / ASSIGNMENT / f"{notebook}.ipynb"
    experiments = experiment_ids(read_cells(master))
    assert experiments, f"{notebook} tags no experiment cell"
    path = grading_root / "autograded" / student / ASSIGNMENT / f"{notebook}.ipynb"
    for cell in (c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"):
        texts = [o.get("text", "") for o in cell.outputs]
        if cell.get("id") in experiments:
            assert texts == [NOT_RUN] and cell.execution_count is None, cell.source[:80]
        else:
            assert cell.execution_count is not None and NOT_RUN not in texts, cell.source[:80]
            assert not any(o.get("output_type") == "error" for o in cell.outputs), (cell.source[:80], cell.outputs)


class NotebookGrading:
    NOTEBOOK: str = ""
    SUBMISSIONS: dict[str, tuple[dict[str, str], set[str]]] = {}

    @pytest.fixture(scope="class")
    @classmethod
    def class_root(cls, tmp_path_factory):
        """The class's folder: submissions/ and grading/ (autograded notebooks under grading/autograded)."""
        return tmp_path_factory.mktemp(f"class-{cls.NOTEBOOK}")

    @pytest.fixture(scope="class")
    @classmethod
    def graded(cls, class_root):
        root = class_root
        subs = root / "submissions"
        write_submission(subs / "reference", reference=True, notebooks=[cls.NOTEBOOK])
        write_submission(subs / "blank", notebooks=[cls.NOTEBOOK])
        for name, (fills, _) in cls.SUBMISSIONS.items():
            write_submission(subs / name, {cls.NOTEBOOK: fills}, reference=True, notebooks=[cls.NOTEBOOK])
        return {r.student: r for r in grade_class(subs, root / "grading", feedback=False, jobs=1)}

    def verdict(self, class_root, student: str, grade_id: str) -> str:
        """What the graded cell `grade_id` of `student`'s autograded notebook says."""
        path = class_root / "grading" / "autograded" / student / ASSIGNMENT / f"{self.NOTEBOOK}.ipynb"
        cell = next(c for c in nbformat.read(path, as_version=4).cells
                    if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id)
        return " ".join(o.get("evalue") or o.get("text", "") for o in cell.outputs)

    def autograded(self, result) -> dict[str, float]:
        cells = {k.split(":", 1)[1]: v for k, v in result.scores.items() if k.startswith(self.NOTEBOOK + ":")}
        return {k: v for k, v in cells.items() if k in REGISTRY}

    def test_every_check_of_the_notebook_is_graded(self, graded):
        assert set(self.autograded(graded["reference"])) == set(autograded_points(self.NOTEBOOK))

    def test_reference_earns_full_marks(self, graded):
        assert graded["reference"].status == "graded"
        assert self.autograded(graded["reference"]) == autograded_points(self.NOTEBOOK)

    def test_reference_runs_every_cell_but_the_experiments(self, class_root, graded):
        """Leaving out the master's experiment cells breaks no other cell of the reference."""
        assert_runs_without_experiments(class_root / "grading", "reference", self.NOTEBOOK)

    def test_blank_release_earns_nothing(self, graded):
        assert graded["blank"].status == "graded"
        assert sum(self.autograded(graded["blank"]).values()) == 0

    def test_whole_submissions_lose_exactly_their_checks(self, graded):
        ref = self.autograded(graded["reference"])
        wrong = {}
        for name, (_, must_lose) in self.SUBMISSIONS.items():
            scores = self.autograded(graded[name])
            lost = {k for k in ref if scores[k] != ref[k]}
            if lost != must_lose or any(scores[k] != 0 for k in lost):
                wrong[name] = {"lost": sorted(lost), "must lose": sorted(must_lose)}
        assert not wrong, wrong

"""Without bubblewrap the grader refuses to grade, unless told --unsafe-no-sandbox, which the table and CSVs name."""
import csv

import pytest

from autograder import grading, sandbox
from autograder.cli import main
from autograder.config import ASSIGNMENT
from autograder.gradebook import GradingError, make_api
from autograder.grading import grade_class
from autograder.reports import format_table, write_csv, write_lms_csv
from autograder.golden.attacks import target

pytestmark = pytest.mark.slow


@pytest.fixture
def no_bwrap(monkeypatch):
    monkeypatch.setattr(sandbox, "isolation_available", lambda: False)
    monkeypatch.setattr(grading, "isolation_available", lambda: False)


@pytest.fixture(scope="module")
def small_class(tmp_path_factory):
    root = tmp_path_factory.mktemp("unsafe")
    source_root = root / "source"
    target.write_source(source_root)
    api = make_api(root / "generate", release_root=root / "release", source_root=source_root)
    assert api.generate_assignment(ASSIGNMENT, force=True, create=True)["success"]
    target.write_submissions(root / "release", source_root, root / "class", {}, attacks=())  # reference and blank
    return root, source_root


def test_refuses_without_bubblewrap(no_bwrap, small_class, tmp_path, capsys):
    root, source_root = small_class
    with pytest.raises(GradingError, match="make sandbox-deps.*--unsafe-no-sandbox"):
        grade_class(root / "class", tmp_path / "grading", source_root=source_root)
    assert not (tmp_path / "grading").exists()  # nothing started
    assert main(["grade", str(root / "class"), "--grading-root", str(tmp_path / "g2"), "--source", str(source_root)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: bubblewrap (bwrap) cannot run here")


def test_unsafe_run_is_named_in_the_table_and_csvs(no_bwrap, small_class, tmp_path):
    root, source_root = small_class
    results = grade_class(root / "class", tmp_path / "grading", source_root=source_root, jobs=2, feedback=False,
                          sandbox={"cell_floor": 20, "notebook_floor": 120}, unsafe_no_sandbox=True)
    by_name = {r.student: r for r in results}
    assert by_name["reference"].status == "graded" and by_name["reference"].total == by_name["reference"].max_total > 0
    assert all(sandbox.UNSAFE in r.notes for r in results)
    assert "UNSAFE" in format_table(results)
    write_csv(results, tmp_path / "grades.csv")
    write_lms_csv(results, tmp_path / "lms.csv")
    for path in (tmp_path / "grades.csv", tmp_path / "lms.csv"):
        rows = list(csv.DictReader(path.open()))
        assert rows and all("UNSAFE" in row["status"] for row in rows)

"""The attack corpus graded end to end: one class (reference, blank, a victim, every attack) on a small
one-notebook assignment, through nbgrader with the sandboxed recorder and the trusted judge, two at a time.

For every attack: no undeserved point, the affected cells lose their points with a message saying why,
the other submissions grade normally, and the gradebook stays consistent.
"""
import hashlib
import socket
import sqlite3
import threading
from pathlib import Path

import nbformat
import pytest

from autograder.config import ASSIGNMENT, REPO_ROOT
from autograder.grading import grade_class, make_api
from tests.submissions.attacks import target
from tests.submissions.attacks.target import ALL_CELLS, ATTACKS, NOTEBOOK

pytestmark = pytest.mark.slow
POINTS = {"channel_stats_values": 2, "channel_stats_errors": 1, "normalize_values": 2, "normalize_errors": 1}
SANDBOX = {"cell_timeout": 10, "notebook_timeout": 120, "memory_bytes": 2 * 2**30, "max_processes": 128,
           "output_bytes": 100_000}


def _checksums(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


class _Server:
    """A TCP server on loopback that hands out a correct solution and counts its connections."""

    def __init__(self, payload: str):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.payload = payload.encode()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.sendall(self.payload)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("attacks")
    source_root, grading = root / "source", root / "grading"
    target.write_source(source_root)
    api = make_api(root / "generate", release_root=root / "release", source_root=source_root)
    assert api.generate_assignment(ASSIGNMENT, force=True, create=True)["success"]
    server = _Server(target.reference_solutions(source_root)["channel_stats_solution"])
    subs = root / "submissions"
    paths = {"source": str(source_root / ASSIGNMENT / f"{NOTEBOOK}.ipynb"), "gradebook": str(grading / "gradebook.db"),
             "gradebook_db": str(grading / "gradebook.db"), "repo_source": str(REPO_ROOT / "source" / ASSIGNMENT / "02_normalization.ipynb"),
             "victim": str(subs / "reference" / f"{NOTEBOOK}.ipynb"),
             "victim_copy": str(grading / "submitted" / "reference" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"), "port": server.port}
    target.write_submissions(root / "release", source_root, subs, paths)
    before = _checksums(subs)
    results = {r.student: r for r in grade_class(subs, grading, jobs=2, source_root=source_root, sandbox=SANDBOX,
                                                             feedback=False)}
    server.sock.close()
    return {"root": root, "grading": grading, "subs": subs, "results": results, "before": before, "server": server}


def cells(result) -> dict[str, float]:
    return {k.split(":", 1)[1]: v for k, v in result.scores.items() if k.startswith(NOTEBOOK + ":")}


def messages(graded, student) -> dict[str, str]:
    """The verdict shown under each graded cell of the autograded notebook."""
    path = graded["grading"] / "autograded" / student / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    nb = nbformat.read(path, as_version=4)
    shown = {}
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in POINTS:
            shown[grade_id] = " ".join(str(o.get("evalue", "")) + str(o.get("text", "")) for o in cell.get("outputs", []))
    return shown


def problems(graded, name: str) -> list[str]:
    """Every way the attack `name` was not contained (empty when it was)."""
    attack = ATTACKS[name]
    result = graded["results"][f"attack_{name}"]
    if result.status != "graded":
        return [f"not graded: {result.status}"]
    found, scores, shown = [], cells(result), messages(graded, f"attack_{name}")
    if result.max_total != sum(POINTS.values()) or set(scores) != set(POINTS):
        found.append(f"graded cells changed: {sorted(scores)}, out of {result.max_total} points")
    for cell, points in POINTS.items():
        score = scores.get(cell)
        if cell in attack["earns"]:
            if score != points:
                found.append(f"{cell}: lost its deserved {points} points ({score}): {shown.get(cell, '')[:200]}")
        elif cell in attack.get("may_earn", []):
            if score not in (0, points):
                found.append(f"{cell}: {score} points")
        elif score != 0:
            found.append(f"{cell}: UNDESERVED {score} points")
        elif cell in shown and attack["reason"].lower() not in shown[cell].lower():
            found.append(f"{cell}: message does not say why ({attack['reason']!r}): {shown[cell][:200]}")
        elif cell in shown and not shown[cell].strip():
            found.append(f"{cell}: no message")
    return found


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attack_is_contained(graded, name):
    assert problems(graded, name) == []


def test_other_submissions_grade_normally(graded):
    results = graded["results"]
    assert results["reference"].status == "graded"
    assert cells(results["reference"]) == POINTS, cells(results["reference"])
    assert results["blank"].status == "graded" and results["blank"].total == 0


def test_submissions_are_untouched(graded):
    assert _checksums(graded["subs"]) == graded["before"]


def test_gradebook_is_consistent(graded):
    con = sqlite3.connect(graded["grading"] / "gradebook.db")
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        per_student = dict(con.execute("SELECT student.id, COUNT(*) FROM submitted_assignment "
                                       "JOIN student ON student.id = submitted_assignment.student_id GROUP BY student.id"))
        assert per_student == {s: 1 for s in graded["results"]}
        assert con.execute("SELECT MAX(auto_score) FROM grade").fetchone()[0] <= max(POINTS.values())
    finally:
        con.close()
    for result in graded["results"].values():
        assert result.total == sum(v or 0 for v in result.scores.values())


def test_no_connection_reached_the_grading_machine(graded):
    assert graded["server"].connections == 0


def test_nothing_escaped_to_disk(graded):
    assert not Path("/tmp/pwned").exists() and not Path("/tmp/huge.bin").exists()
    big = [p for p in graded["root"].rglob("*") if p.is_file() and p.stat().st_size > 50 * 2**20]
    assert big == []


def test_attacks_contained_summary(graded, capsys):
    failed = {name: problems(graded, name) for name in sorted(ATTACKS)}
    contained = sum(not v for v in failed.values())
    with capsys.disabled():
        print(f"\nattacks contained: {contained}/{len(ATTACKS)}")
        for name, found in failed.items():
            print(f"  {'ok  ' if not found else 'FAIL'} {name}: {ATTACKS[name]['what']}" + (f" -> {found}" if found else ""))
    assert contained == len(ATTACKS), {k: v for k, v in failed.items() if v}

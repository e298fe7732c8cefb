"""The attack corpus graded end to end: one class (reference, blank, a victim, every attack) on a small
one-notebook assignment, through nbgrader with the sandboxed recorder and the trusted judge, two at a time.

For every attack: no undeserved point, the affected cells lose their points with a message saying why,
the other submissions grade normally, and the gradebook stays consistent.
"""
import hashlib
import os
import socket
import sqlite3
import threading
from pathlib import Path

import nbformat
import pytest

from autograder.config import ASSIGNMENT, REPO_ROOT
from autograder.gradebook import make_api
from autograder.grading import grade_class
from autograder.golden.attacks import target
from autograder.golden.attacks.target import ATTACKS, NOTEBOOK

pytestmark = pytest.mark.slow
POINTS = {"channel_stats_values": 2, "channel_stats_errors": 1, "normalize_values": 2, "normalize_errors": 1}
# Time limits derived from the small assignment's recorded run (~0 s per cell): the floors.
CELL_FLOOR = 10
SANDBOX = {"cell_floor": CELL_FLOOR, "notebook_floor": 120, "memory_bytes": 2 * 2**30, "max_processes": 128,
           "output_bytes": 100_000}
TOKEN = ("GRADER_API_TOKEN", "tok-7c1e5b9d2f")  # a credential in the grader's environment


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
             "gradebook_db": str(grading / "gradebook.db"),
             "repo_source": str(REPO_ROOT / "source" / ASSIGNMENT / "02_normalization.ipynb"),
             "victim": str(subs / "reference" / f"{NOTEBOOK}.ipynb"),
             "victim_copy": str(grading / "submitted" / "reference" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"), "port": server.port,
             # another course's grading run on the same machine, with a correct submission in it
             "other_run": str(root / "other-course" / "grading" / "submitted" / "alice" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"),
             "other_glob": str(root / "*" / "*" / "submitted" / "*" / ASSIGNMENT / "*.ipynb"),
             "outside": str(root / "escaped.txt"), "home": str(Path.home()),
             "home_marker": str(Path.home() / f"escaped-{root.name}.txt"), "sleep": CELL_FLOOR - 1}
    target.write_submissions(root / "release", source_root, subs, paths)
    other = Path(paths["other_run"])
    other.parent.mkdir(parents=True)
    other.write_bytes((subs / "reference" / f"{NOTEBOOK}.ipynb").read_bytes())
    before = _checksums(subs)
    os.environ[TOKEN[0]] = TOKEN[1]
    try:
        results = {r.student: r for r in grade_class(subs, grading, jobs=2, source_root=source_root, sandbox=SANDBOX,
                                                     feedback=False)}
    finally:
        del os.environ[TOKEN[0]]
        server.sock.close()
    return {"root": root, "grading": grading, "subs": subs, "results": results, "before": before, "server": server,
            "paths": paths, "source_root": source_root}


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
    result = graded["results"][target.student(name)]
    if result.status != "graded":
        return [f"not graded: {result.status}"]
    found, scores, shown = [], cells(result), messages(graded, target.student(name))
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
    escaped = [p for p in (graded["paths"]["outside"], "/tmp/pwned-outside", graded["paths"]["home_marker"], "/etc/pwned",
                           "/opt/pwned") if Path(p).exists()]
    for path in escaped:  # clean up, then fail
        Path(path).unlink()
    assert escaped == []
    big = [p for p in graded["root"].rglob("*") if p.is_file() and p.stat().st_size > 50 * 2**20]
    assert big == []


def _autograded_text(graded, student) -> str:
    return (graded["grading"] / "autograded" / student / ASSIGNMENT / f"{NOTEBOOK}.ipynb").read_text()


def test_no_host_secret_or_path_reaches_the_outputs(graded):
    """What the prying attacks printed (their autograded notebooks, which feedback shows) holds no credential,
    no line of /etc/shadow, no listing of the grader's home and no host path of the grading folders."""
    shadow = [line for line in Path("/etc/shadow").read_text().splitlines() if line.strip()]
    for name in ("read_home_and_shadow", "environment_token", "mountinfo_paths"):  # (the others print paths they were given)
        text = _autograded_text(graded, target.student(name))
        assert TOKEN[1] not in text
        assert not any(line in text for line in shadow)
        assert f"listed {graded['paths']['home']}" not in text and "listed /root" not in text
        for host in (graded["grading"], graded["subs"], graded["root"]):
            assert str(host) not in text, (name, str(host))
    assert "denied /etc/shadow" in _autograded_text(graded, target.student("read_home_and_shadow"))


def test_environment_token_is_not_in_the_feedback(graded):
    student = target.student("environment_token")
    api = make_api(graded["grading"], source_root=graded["source_root"])
    assert api.generate_feedback(ASSIGNMENT, student, force=True)["success"]
    html = (graded["grading"] / "feedback" / student / ASSIGNMENT / f"{NOTEBOOK}.html").read_text()
    assert "WORKBOOK_GRADING_DIR" in html  # the kernel's environment was printed: only the allowlisted part
    assert TOKEN[0] not in html and TOKEN[1] not in html


def test_sleeping_submission_is_stopped_at_the_reference_limit(graded):
    """The cell limit comes from the small assignment's recorded run (its floor), not a fixed 120 s: every
    graded cell of the sleeper is interrupted after CELL_FLOOR seconds."""
    shown = messages(graded, target.student("sleep_under_limit"))
    for cell in POINTS:
        assert f"CellTimeoutError: the cell ran longer than {CELL_FLOOR} s" in shown[cell], shown[cell]


def test_attacks_contained_summary(graded, capsys):
    failed = {name: problems(graded, name) for name in sorted(ATTACKS)}
    contained = sum(not v for v in failed.values())
    with capsys.disabled():
        print(f"\nattacks contained: {contained}/{len(ATTACKS)}")
        for name, found in failed.items():
            print(f"  {'ok  ' if not found else 'FAIL'} {name}: {ATTACKS[name]['what']}" + (f" -> {found}" if found else ""))
    assert contained == len(ATTACKS), {k: v for k, v in failed.items() if v}

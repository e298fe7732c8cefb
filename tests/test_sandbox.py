"""Each isolation claim of the sandbox, checked from inside a sandboxed kernel."""
import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from autograder.sandbox import REPO_ROOT, isolation_available, run_sandboxed

pytestmark = pytest.mark.slow

PROBE = '''
import json, os, pathlib, socket
root = pathlib.Path({root!r})
report = {{}}
def attempt(name, fn):
    try:
        fn()
        report[name] = "allowed"
    except Exception as e:
        report[name] = type(e).__name__
attempt("read reference", lambda: (root / "autograder" / "reference" / "normalization.py").read_text())
attempt("import reference", lambda: __import__("autograder.reference.normalization"))
attempt("read secret", lambda: pathlib.Path({secret!r}).read_text())
attempt("write workbook", lambda: (root / "workbook" / "planted.py").write_text("x = 1"))
attempt("write venv", lambda: (root / ".venv" / "planted.txt").write_text("x"))
attempt("network", lambda: socket.create_connection(("127.0.0.1", {port}), timeout=2))
attempt("read workbook", lambda: (root / "workbook" / "checks.py").read_text())
attempt("write workdir", lambda: pathlib.Path("mine.txt").write_text("ok"))
print(json.dumps(report))
'''


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    import socket
    if not isolation_available():
        pytest.skip("namespaces unavailable here; the grader logs the degraded mode")
    secret_dir = tmp_path_factory.mktemp("gradebook")
    (secret_dir / "gradebook.db").write_text("grades")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    nb = new_notebook(cells=[new_code_cell(PROBE.format(root=str(REPO_ROOT), secret=str(secret_dir / "gradebook.db"),
                                                        port=server.getsockname()[1]))])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    work = tmp_path_factory.mktemp("work")
    result = run_sandboxed(nb, work, cell_timeout=60, notebook_timeout=120, hide=[secret_dir])
    server.close()
    assert result.status == "ok", result.message
    text = "".join(o.get("text", "") for o in result.notebook.cells[0].outputs if o.output_type == "stream")
    return json.loads(text.strip().splitlines()[-1]), work


@pytest.mark.parametrize("claim", ["read reference", "import reference", "read secret", "write workbook",
                                   "write venv", "network"])
def test_denied(report, claim):
    outcome, _ = report
    assert outcome[claim] != "allowed", outcome


def test_the_kernel_still_works(report):
    outcome, work = report
    assert outcome["read workbook"] == "allowed" and outcome["write workdir"] == "allowed"
    assert (work / "mine.txt").read_text() == "ok"
    assert not (REPO_ROOT / "workbook" / "planted.py").exists()

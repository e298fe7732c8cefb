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
    # The work folder is a tmpfs: only the executed notebook and the recordings come back.
    assert not (work / "mine.txt").exists() and (work / "executed.ipynb").exists()
    assert not (REPO_ROOT / "workbook" / "planted.py").exists()


# ---------------------------------------------------------------- resource limits
LIMITS_PROBES = {
    "torch": "import torch\nprint('torch ok', (torch.ones(64, 64) @ torch.ones(64, 64)).sum().item())",
    "memory": "block = bytearray(3 * 2**30)",
    "loop": "while True:\n    pass",
    "fork": ("import os, time\npids = []\ntry:\n    for _ in range(400):\n        pid = os.fork()\n"
             "        if pid == 0:\n            time.sleep(60)\n            os._exit(0)\n        pids.append(pid)\n"
             "except OSError as e:\n    print('fork refused after', len(pids))\n"
             "for pid in pids:\n    os.kill(pid, 9)\n    os.waitpid(pid, 0)"),
    "big_file": "open('big.bin', 'wb').write(b'0' * (24 * 2**20))",
    "disk": "for i in range(8):\n    open(f'part{i}.bin', 'wb').write(b'0' * (12 * 2**20))",
    "flood": "while True:\n    print('x' * 10000)",
    "escape": "import subprocess\nsubprocess.Popen(['sleep', '4321.5'], start_new_session=True)\nprint('spawned')",
    "alive": "print('still alive')",
}
SMALL = dict(cell_timeout=6, notebook_timeout=150, memory_bytes=2**30, max_processes=64, output_bytes=20_000,
             file_bytes=16 * 2**20, disk_bytes=48 * 2**20)


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    from autograder.sandbox import Limits
    nb = new_notebook(cells=[new_code_cell(src) for src in LIMITS_PROBES.values()])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    result = run_sandboxed(nb, tmp_path_factory.mktemp("limits"), hide=[], limits=Limits(**SMALL))
    assert result.notebook is not None, result.message
    return result, dict(zip(LIMITS_PROBES, result.notebook.cells))


def _text(cell):
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def _error(cell):
    return next((o.ename for o in cell.outputs if o.output_type == "error"), None)


def test_torch_works_under_the_memory_limit(limited):
    _, cells = limited
    assert "torch ok 262144.0" in _text(cells["torch"])


def test_memory_bomb_raises_memory_error_in_its_cell(limited):
    _, cells = limited
    assert _error(cells["memory"]) == "MemoryError"


def test_infinite_loop_is_interrupted_at_the_cell_limit(limited):
    _, cells = limited
    assert _error(cells["loop"]) == "CellTimeoutError"


def test_fork_bomb_hits_the_process_limit(limited):
    result, cells = limited
    if not any(p.startswith("processes:") for p in result.protections):
        pytest.skip(f"no process limit on this machine; the grading log says: {result.degraded}")
    assert "fork refused after" in _text(cells["fork"]), cells["fork"].outputs
    assert int(_text(cells["fork"]).split("after")[1].split()[0]) < SMALL["max_processes"]


def test_output_flood_is_capped(limited):
    _, cells = limited
    text = _text(cells["flood"])
    # The grader's cap interrupts the cell; or the kernel's own output buffer reaches the memory limit
    # first (the kernel prints faster than it sends), or, on a loaded machine, the cell's time limit
    # does. Each ends the cell and keeps little output.
    ended = _error(cells["flood"]) in {"OutputLimitError", "CellTimeoutError"} or "MemoryError" in text
    assert ended, cells["flood"].outputs
    assert len(text) < 3 * SMALL["output_bytes"]


def test_huge_file_and_full_disk_are_refused(limited):
    _, cells = limited
    assert _error(cells["big_file"]) == "OSError"
    assert _error(cells["disk"]) == "OSError"


def test_every_process_is_killed_at_the_end(limited):
    import subprocess as sp
    _, cells = limited
    assert "spawned" in _text(cells["escape"])
    left = sp.run(["pgrep", "-f", "sleep 4321.5"], capture_output=True, text=True).stdout.split()
    assert left == []


def test_kernel_survives_every_limit(limited):
    result, cells = limited
    assert result.status == "ok", result.message
    assert "still alive" in _text(cells["alive"])


def test_each_protection_is_named(limited):
    result, _ = limited
    text = " | ".join(result.protections + result.degraded)
    for word in ("time:", "output:", "memory per process", "file size"):
        assert word in text


def test_missing_mechanisms_are_named_in_the_grading_log(tmp_path, monkeypatch, caplog):
    """Without cgroups or namespaces the run still happens, and the log says which protections are missing."""
    import logging

    import autograder.sandbox as sandbox
    monkeypatch.setattr(sandbox, "CGROUP_ROOT", tmp_path / "no-cgroups")
    monkeypatch.setattr(sandbox, "isolation_available", lambda: False)
    monkeypatch.setattr(sandbox, "_own_cgroup", lambda controller: None)
    nb = new_notebook(cells=[new_code_cell("print('ran')")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    with caplog.at_level(logging.WARNING, logger="autograder.sandbox"):
        result = run_sandboxed(nb, tmp_path / "work", hide=[], cell_timeout=60, notebook_timeout=120)
    assert result.status == "ok" and "ran" in _text(result.notebook.cells[0])
    assert not result.isolated
    log = caplog.text
    assert "SANDBOX DEGRADED" in log and "namespaces are unavailable" in log
    assert "no memory cgroup" in log
    import os
    if os.getuid() == 0:
        assert "the process count is NOT limited" in log
    else:
        assert any(p.startswith("processes: RLIMIT_NPROC") for p in result.protections)


def test_notebook_time_limit_keeps_what_ran(tmp_path):
    """At the notebook's limit the run stops itself: finished cells keep their outputs, later ones say why."""
    from autograder.sandbox import Limits
    cells = ["print('first')", "import time\ntime.sleep(60)", "print('never')"]
    nb = new_notebook(cells=[new_code_cell(src) for src in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    # The runner stops 10 s before the grader's hard kill: here after 15 s, whatever the cell limit.
    result = run_sandboxed(nb, tmp_path, hide=[], limits=Limits(cell_timeout=100, notebook_timeout=25))
    assert result.notebook is not None, result.message
    first, sleeper, last = result.notebook.cells
    assert "first" in _text(first)
    assert _error(sleeper) == "CellTimeoutError"
    assert _error(last) == "NotebookTimeoutError"

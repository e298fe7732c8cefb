"""Each isolation claim of the sandbox, checked from inside a sandboxed kernel: what it may not do, the
whole file system it sees (walked, and compared with the allowlist of `autograder.sandbox_view`), its
environment, and what /proc tells it about the host."""
import json
import os

import pytest
from nbformat.v4 import new_code_cell, new_notebook

from autograder import sandbox_view
from autograder.sandbox import REPO_ROOT, Limits, SandboxUnavailable, isolation_available, run_sandboxed
from workbook import output_cap

pytestmark = pytest.mark.slow
TOKEN = "GRADER_SECRET_TOKEN"

CLAIMS = '''
import json, os, pathlib, socket, subprocess
root = pathlib.Path({root!r})
report = {{}}
def attempt(name, fn):
    try:
        fn()
        report[name] = "allowed"
    except Exception as e:
        report[name] = type(e).__name__
def other_runner_fds():
    for pid in os.listdir("/proc"):
        if pid.isdigit() and int(pid) != os.getpid():
            for fd in os.listdir(f"/proc/{{pid}}/fd"):
                target = os.readlink(f"/proc/{{pid}}/fd/{{fd}}")
                if target.startswith("/") and not target.startswith(("/dev/", "/home/student", "/tmp/")):
                    return target
    raise LookupError("none")
def new_user_namespace():
    if subprocess.run(["unshare", "--user", "--map-root-user", "true"], capture_output=True).returncode:
        raise PermissionError("unshare refused")
attempt("read reference", lambda: (root / "autograder" / "reference" / "normalization.py").read_text())
attempt("import reference", lambda: __import__("autograder.reference.normalization"))
attempt("read secret", lambda: pathlib.Path({secret!r}).read_text())
attempt("list grading root", lambda: os.listdir({secret_dir!r}))
attempt("read home", lambda: os.listdir(os.path.expanduser("~" + {user!r})))
attempt("read /root", lambda: os.listdir("/root"))
attempt("read shadow", lambda: pathlib.Path("/etc/shadow").read_text())
attempt("write workbook", lambda: (pathlib.Path(__import__("workbook").__file__).parent / "planted.py").write_text("x = 1"))
attempt("write venv", lambda: (pathlib.Path(os.__file__).parent / "planted.txt").write_text("x"))
attempt("write root", lambda: pathlib.Path("/planted").write_text("x"))
attempt("write etc", lambda: pathlib.Path("/etc/passwd").write_text("x"))
attempt("network", lambda: socket.create_connection(("127.0.0.1", {port}), timeout=2))
attempt("runner descriptor", other_runner_fds)
attempt("user namespace", new_user_namespace)
attempt("read workbook", lambda: (pathlib.Path(__import__("workbook").__file__).parent / "checks.py").read_text())
attempt("write workdir", lambda: pathlib.Path("mine.txt").write_text("ok"))
attempt("write tmp", lambda: pathlib.Path("/tmp/mine.txt").write_text("ok"))
report["uid"] = os.getuid()
print(json.dumps(report))
'''

# Walks everything the kernel can see (except /proc, which the leak cell reads): each visible path not
# inside an allowlisted entry (or a folder leading to one), each writable place (top-most only), and which
# allowlisted entries exist.
WALK = '''
import json, os
allowed = {allowed!r}
def covered(path):
    return any(path == a or path.startswith(a.rstrip("/") + "/") or a.startswith(path.rstrip("/") + "/") for a in allowed)
outside, writable, files = [], [], 0
def visit(path, is_dir):
    global files
    if not covered(path):
        outside.append(path)
    if os.access(path, os.W_OK, follow_symlinks=False):
        writable.append(path)  # a writable folder is listed, not walked
        return
    if not is_dir:
        files += 1
        return
    try:
        entries = list(os.scandir(path))
    except OSError:
        return
    for entry in entries:
        if entry.path != "/proc":
            visit(entry.path, entry.is_dir(follow_symlinks=False))
visit("/", True)
print(json.dumps({{"outside": outside[:50], "writable": writable, "files": files,
                  "present": [a for a in allowed if os.path.lexists(a)]}}))
'''

LEAKS = '''
import json, os
seen = {{"environ": dict(os.environ)}}
for name in ("mountinfo", "mounts", "cgroup", "cmdline", "environ", "status", "maps"):
    for pid in [p for p in os.listdir("/proc") if p.isdigit()] + ["self"]:
        try:
            with open(f"/proc/{{pid}}/{{name}}", "rb") as f:
                seen[f"/proc/{{pid}}/{{name}}"] = f.read().decode(errors="replace")
        except OSError as e:
            seen[f"/proc/{{pid}}/{{name}}"] = type(e).__name__
for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
    for link in ("cwd", "root", "exe"):
        try:
            seen[f"/proc/{{pid}}/{{link}}"] = os.readlink(f"/proc/{{pid}}/{{link}}")
        except OSError as e:
            seen[f"/proc/{{pid}}/{{link}}"] = type(e).__name__
print(json.dumps(seen))
'''


def _notebook(*sources):
    nb = new_notebook(cells=[new_code_cell(src) for src in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def _json_output(cell):
    text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
    assert text.strip(), cell.outputs
    return json.loads(text.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    import pwd
    import socket
    if not isolation_available():
        pytest.skip("bubblewrap cannot run here; the grader refuses to grade (see test_refuses_without_bubblewrap)")
    secret_dir = tmp_path_factory.mktemp("gradebook")
    (secret_dir / "gradebook.db").write_text("grades")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    allowed = [m.inside for m in sandbox_view.allowlist(Limits().disk_bytes)]
    nb = _notebook(CLAIMS.format(root=str(REPO_ROOT), secret=str(secret_dir / "gradebook.db"), secret_dir=str(secret_dir),
                                 user=pwd.getpwuid(os.getuid()).pw_name, port=server.getsockname()[1]),
                   WALK.format(allowed=allowed), LEAKS.format())
    work = tmp_path_factory.mktemp("work")
    os.environ[TOKEN] = "tok-3f9a1c"  # a credential in the grader's environment
    try:
        result = run_sandboxed(nb, work, cell_timeout=240, notebook_timeout=400, hide=[secret_dir])
    finally:
        del os.environ[TOKEN]
        server.close()
    assert result.status == "ok", result.message
    claims, walk, leaks = (_json_output(c) for c in result.notebook.cells)
    return {"claims": claims, "walk": walk, "leaks": leaks, "work": work, "secret_dir": secret_dir}


@pytest.mark.parametrize("claim", ["read reference", "import reference", "read secret", "list grading root", "read home",
                                   "read /root", "read shadow", "write workbook", "write venv", "write root", "write etc",
                                   "network", "runner descriptor", "user namespace"])
def test_denied(report, claim):
    assert report["claims"][claim] != "allowed", report["claims"]


def test_the_kernel_still_works(report):
    claims, work = report["claims"], report["work"]
    assert claims["read workbook"] == "allowed" and claims["write workdir"] == "allowed"
    assert claims["write tmp"] == "allowed"
    assert claims["uid"] == sandbox_view.SANDBOX_UID  # not root inside
    # The work folder is a tmpfs: only the executed notebook and the recordings come back.
    assert not (work / "mine.txt").exists() and (work / "executed.ipynb").exists()
    assert not (REPO_ROOT / "workbook" / "planted.py").exists()


def test_visible_file_system_is_the_allowlist(report):
    """Every path the kernel sees is an allowlisted entry (or inside one), every entry is there, and the
    only writable places are the tmpfs mounts and the device nodes of bubblewrap's minimal /dev."""
    walk, mounts = report["walk"], sandbox_view.allowlist(Limits().disk_bytes)
    assert walk["outside"] == []
    assert walk["files"] > 1000  # the Python installation, the venv, /usr: the walk really ran
    assert sorted(walk["present"]) == sorted(m.inside for m in mounts)
    tmpfs = {m.inside for m in mounts if m.writable}
    # bubblewrap's minimal /dev: its device nodes and a private devpts for pseudo-terminals.
    devices = {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty", "/dev/pts"} | {
        m.inside for m in mounts if m.kind == "device"}
    assert set(walk["writable"]) - devices == tmpfs, walk["writable"]


def test_no_host_path_of_the_grading_folders_reaches_the_kernel(report):
    """Neither the grading folder nor the run's folder appears in /proc (mountinfo, cmdlines, environments,
    links) or in the kernel's environment."""
    text = json.dumps(report["leaks"])
    for host_path in (report["secret_dir"], report["work"]):
        assert str(host_path) not in text
    assert "pytest-of" not in text  # any folder of this test session
    assert report["leaks"]["/proc/self/mountinfo"].count("\n") > 10


def test_environment_is_the_allowlist(report):
    environ = report["leaks"]["environ"]
    assert TOKEN not in environ and "tok-3f9a1c" not in json.dumps(report["leaks"])
    ours = {"PATH", "HOME", "LANG", "TMPDIR", "MPLCONFIGDIR", "WORKBOOK_GRADING_DIR", "WORKBOOK_CACHE", "PYTHONPATH",
            "PYTHONDONTWRITEBYTECODE", "LD_LIBRARY_PATH", *sandbox_view.FROM_GRADER}
    # ipykernel adds a few of its own to the kernel process (JPY_PARENT_PID, MPLBACKEND, PAGER, ...), the runner the
    # kernel's output cap (workbook/output_cap.py).
    ipykernel = {"JPY_PARENT_PID", "MPLBACKEND", "PAGER", "GIT_PAGER", "CLICOLOR", "CLICOLOR_FORCE", "FORCE_COLOR",
                 "TERM", "PYDEVD_USE_FRAME_EVAL", "PWD", output_cap.CAP_ENV}
    assert set(environ) <= ours | ipykernel, set(environ) - ours - ipykernel
    assert environ["HOME"] == sandbox_view.HOME


def test_kernel_environment_takes_only_allowlisted_variables():
    env = sandbox_view.kernel_environment("/home/student", {"AWS_SECRET_ACCESS_KEY": "x", "CUDA_VISIBLE_DEVICES": "1",
                                                            "OMP_NUM_THREADS": "4", "PYTHONPATH": "/evil"},
                                          {"WORKBOOK_FAST": "1", "LD_PRELOAD": "/evil.so"}, threads=2, isolated=True)
    assert "AWS_SECRET_ACCESS_KEY" not in env and "LD_PRELOAD" not in env
    assert env["CUDA_VISIBLE_DEVICES"] == "1" and env["WORKBOOK_FAST"] == "1" and env["OMP_NUM_THREADS"] == "2"
    assert env["PYTHONPATH"] == "/opt/course"


def test_grading_folder_inside_a_visible_folder_is_refused(tmp_path):
    inside = REPO_ROOT / "workbook" / "gradebook-here"
    with pytest.raises(ValueError, match="must stay hidden"):
        run_sandboxed(_notebook("print(1)"), tmp_path, hide=[inside])


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
    "escape": "import subprocess\nsubprocess.Popen(['sleep', '4321.5'], start_new_session=True)\nprint('spawned')",
    # after escape: a loaded run once showed the cell after the flood meeting the memory limit (a MemoryError
    # in the fork of escape's Popen), and escape tests the killing of processes, not that
    "flood": "while True:\n    print('x' * 10000)",
    # a message whose signature does not match, as a kernel leaves when it meets its memory limit mid-send
    "garble": ("kernel = get_ipython().kernel\n"
               "kernel.iopub_socket.send_multipart([b'stray', b'<IDS|MSG>', b'0' * 64, b'{}', b'{}', b'{}', b'{}'])\n"
               "print('sent')"),
    "alive": "print('still alive')",
}
SMALL = dict(cell_timeout=6, notebook_timeout=150, memory_bytes=2**30, max_processes=64, output_bytes=20_000,
             file_bytes=16 * 2**20, disk_bytes=48 * 2**20)


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
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
    # The grader's cap interrupts the cell (or, on a loaded machine, the cell's time limit does). The kernel
    # drops what the cell prints past twice the cap (workbook/output_cap.py), so its output buffer no longer
    # fills its memory; but a kernel with torch loaded sits near this test's 1 GiB limit, and one clean-clone
    # run still met a MemoryError elsewhere in the kernel (encoding a message). Each ends the cell and keeps
    # little output.
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


def test_a_garbled_message_from_the_kernel_ends_nothing(limited):
    result, cells = limited
    assert "sent" in _text(cells["garble"]) and "still alive" in _text(cells["alive"])
    assert result.status == "ok", result.message


def test_kernel_survives_every_limit(limited):
    result, cells = limited
    assert result.status == "ok", result.message
    assert "still alive" in _text(cells["alive"])


def test_each_protection_is_named(limited):
    result, _ = limited
    text = " | ".join(result.protections + result.degraded)
    for word in ("time:", "output:", "memory per process", "file size"):
        assert word in text


def test_refuses_without_bubblewrap(tmp_path, monkeypatch):
    import autograder.sandbox as sandbox
    monkeypatch.setattr(sandbox, "isolation_available", lambda: False)
    with pytest.raises(SandboxUnavailable, match="install it with `make sandbox-deps`.*--unsafe-no-sandbox"):
        run_sandboxed(_notebook("print('ran')"), tmp_path / "work", hide=[], cell_timeout=60, notebook_timeout=120)
    assert not (tmp_path / "work" / "executed.ipynb").exists()


def test_missing_mechanisms_are_named_in_the_grading_log(tmp_path, monkeypatch, caplog):
    """Without cgroups or bubblewrap (asked for: unsafe) the run still happens, and the log says which
    protections are missing; `degraded_reasons` says the same before any run."""
    import logging

    import autograder.sandbox as sandbox
    monkeypatch.setattr(sandbox, "CGROUP_ROOT", tmp_path / "no-cgroups")
    monkeypatch.setattr(sandbox, "isolation_available", lambda: False)
    monkeypatch.setattr(sandbox, "_own_cgroup", lambda controller: None)
    with caplog.at_level(logging.WARNING, logger="autograder.sandbox"):
        result = run_sandboxed(_notebook("print('ran')"), tmp_path / "work", hide=[], cell_timeout=60,
                               notebook_timeout=120, unsafe=True)
    assert result.status == "ok" and "ran" in _text(result.notebook.cells[0])
    assert not result.isolated
    log = caplog.text
    assert "SANDBOX DEGRADED" in log and sandbox.UNSAFE in log
    assert "no memory cgroup" in log
    if os.getuid() == 0:
        assert "the process count is NOT limited" in log
    else:
        assert any(p.startswith("processes: RLIMIT_NPROC") for p in result.protections)
    reasons = sandbox.degraded_reasons()
    assert sandbox.NO_BWRAP in reasons and any("no memory cgroup" in r for r in reasons)


def test_bubblewrap_is_not_reported_missing_where_it_runs():
    if not isolation_available():
        pytest.skip("bubblewrap cannot run here")
    from autograder.sandbox import NO_BWRAP, degraded_reasons
    assert NO_BWRAP not in degraded_reasons()


def test_notebook_time_limit_keeps_what_ran(tmp_path):
    """At the notebook's limit the run stops itself: finished cells keep their outputs, later ones say why."""
    cells = ["print('first')", "import time\ntime.sleep(60)", "print('never')"]
    nb = new_notebook(cells=[new_code_cell(src) for src in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    # The runner stops 10 s before the grader's hard kill: here after 10 s, whatever the cell limit.
    result = run_sandboxed(nb, tmp_path, hide=[], limits=Limits(cell_timeout=100, notebook_timeout=20))
    assert result.notebook is not None, result.message
    first, sleeper, last = result.notebook.cells
    assert "first" in _text(first)
    assert _error(sleeper) == "CellTimeoutError"
    assert _error(last) == "NotebookTimeoutError"

"""Phase 1 of grading: run one submitted notebook in an isolated kernel and bring back its outputs.

The notebook runs under `autograder.sandbox_runner` in new Linux namespaces (user, mount, network,
pid; `unshare` from util-linux): the course's instructor files are hidden behind empty tmpfs mounts,
the project and its environment are read-only, /tmp is private (or, when the project itself lives
under /tmp, everything else there is hidden), there is no network, and killing the
runner kills every process the notebook started. The kernel talks to the runner over Unix sockets
(Jupyter's `ipc` transport), which a new network namespace does not cut off.

Where namespaces are not available the notebook still runs in its own process group with the same
time limits, and the grading log says loudly which protections are missing.
"""
import functools
import logging
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

__all__ = ["SandboxResult", "run_sandboxed", "isolation_available", "REPO_ROOT", "VISIBLE_ENTRIES"]

log = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[1]
# What a student's kernel may see of the project: its helper package, environment and data caches.
VISIBLE_ENTRIES = ("workbook", ".venv", ".cache", "images", "release")
MOUNT_POINT = REPO_ROOT / ".cache" / "sandbox-work"
UNSHARE = ("unshare", "--user", "--map-root-user", "--mount", "--net", "--pid", "--fork", "--kill-child")


@dataclass(frozen=True)
class SandboxResult:
    """What came back from one sandboxed run."""
    notebook: nbformat.NotebookNode | None
    status: str  # "ok", "timeout", "crashed"
    message: str
    isolated: bool


@functools.cache
def isolation_available() -> bool:
    """True when this machine lets us create user, mount, network and pid namespaces."""
    if shutil.which("unshare") is None:
        return False
    try:
        probe = subprocess.run([*UNSHARE, "true"], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def hidden_paths(extra: list[Path]) -> list[Path]:
    """Everything of the project outside VISIBLE_ENTRIES, plus the given grading folders."""
    hidden = [p for p in REPO_ROOT.iterdir() if p.name not in VISIBLE_ENTRIES]
    return hidden + [Path(p) for p in extra]


def read_only_paths() -> list[str]:
    """The project's visible folders and the Python installation(s) the kernel runs from."""
    paths = [REPO_ROOT / e for e in VISIBLE_ENTRIES if (REPO_ROOT / e).exists()]
    for prefix in {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()}:
        if not prefix.is_relative_to(REPO_ROOT):
            paths.append(prefix)
    return [str(p) for p in paths]


def run_sandboxed(nb: nbformat.NotebookNode, workdir: Path, *, cell_timeout: int, notebook_timeout: int,
                  hide: list[Path], env: dict[str, str] | None = None) -> SandboxResult:
    """Execute `nb` with `workdir` as its only writable folder.

    Args:
        nb: the notebook to run (trusted cells already restored by nbgrader).
        workdir: a fresh folder holding the grader's inputs; the kernel sees it as its working folder.
        cell_timeout: seconds one cell may run before it is interrupted and marked as timed out.
        notebook_timeout: seconds the whole run may take before every process of it is killed.
        hide: grading folders to hide from the kernel (gradebook, other submissions, ...).
        env: extra environment variables for the kernel.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, workdir / "submission.ipynb")
    isolated = isolation_available()
    inside = MOUNT_POINT if isolated else workdir
    args = [sys.executable, "-m", "autograder.sandbox_runner", "--workdir", str(inside),
            "--cell-timeout", str(cell_timeout)]
    if isolated:
        MOUNT_POINT.mkdir(parents=True, exist_ok=True)
        args += ["--bind", str(workdir), "--project", str(REPO_ROOT), "--read-only", *read_only_paths()]
        for path in hidden_paths(hide):
            args += ["--hide", str(path)]
        cmd = [*UNSHARE, *args]
    else:
        log.warning("SANDBOX DEGRADED: namespaces are unavailable (unshare failed); the notebook runs without "
                    "file hiding, read-only mounts or network isolation, only with time limits")
        cmd = args
    kernel_env = {k: v for k, v in os.environ.items() if not k.startswith(("NBGRADER", "JPY_"))}
    kernel_env.update(env or {})
    kernel_env.update({"WORKBOOK_GRADING_DIR": str(inside / ".grading"), "HOME": str(inside),
                       "MPLCONFIGDIR": str(inside / ".matplotlib"), "PYTHONDONTWRITEBYTECODE": "1"})
    kernel_env.pop("PYTHONPATH", None)
    proc = subprocess.Popen(cmd, cwd=workdir, env=kernel_env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        output, _ = proc.communicate(timeout=notebook_timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        proc.communicate()
        return SandboxResult(_read(workdir), "timeout",
                             f"the notebook ran longer than {notebook_timeout} s and was stopped", isolated)
    finally:
        _kill_group(proc)
    text = output.decode(errors="replace")[-2000:]
    executed = _read(workdir)
    if proc.returncode != 0 or executed is None:
        return SandboxResult(executed, "crashed", f"the notebook run ended abnormally (exit {proc.returncode}): {text[-400:]}", isolated)
    return SandboxResult(executed, "ok", "", isolated)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _read(workdir: Path) -> nbformat.NotebookNode | None:
    path = workdir / "executed.ipynb"
    try:
        return nbformat.read(path, as_version=4)
    except Exception:  # missing, or written by a kernel that died half-way
        return None

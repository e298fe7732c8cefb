"""Phase 1 of grading: run one submitted notebook in an isolated kernel and bring back its outputs.

The notebook runs under `autograder.sandbox_runner` in new Linux namespaces (user, mount, network,
pid; `unshare` from util-linux): the course's instructor files are hidden behind empty tmpfs mounts,
the project and its environment are read-only, /tmp is private (or, when the project itself lives
under /tmp, everything else there is hidden), there is no network, and killing the
runner kills every process the notebook started. The kernel talks to the runner over Unix sockets
(Jupyter's `ipc` transport), which a new network namespace does not cut off.

Limits (each with a fallback, and every fallback named in the grading log, see `Limits`):
- time: per cell (nbclient interrupts the cell) and per notebook (every process of the run is killed);
- memory: RLIMIT_DATA per process (a MemoryError in the cell; unlike RLIMIT_AS it leaves the large
  PROT_NONE address reservations of CUDA and torch alone) and, where this machine lets us create a
  memory cgroup, a cap on the whole run;
- processes: a pids cgroup (`pids.max`); without one, RLIMIT_NPROC, which Linux does not enforce for
  root (uid 0 outside the namespace), so the log says the limit is missing when the grader runs as root;
- output: at most `output_bytes` of outputs per cell are kept (the runner drops the rest and interrupts
  a flooding cell);
- files: RLIMIT_FSIZE per file; the work folder is deleted after judging.
At the end every process of the run is killed: the runner's process group, the pid namespace (its
init dies), and every task still in the run's cgroups.

Where namespaces are not available the notebook still runs in its own process group with the same
limits, and the grading log says loudly which protections are missing.
"""
import ctypes
import functools
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

__all__ = ["SandboxResult", "Limits", "run_sandboxed", "isolation_available", "REPO_ROOT", "VISIBLE_ENTRIES"]

log = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[1]
# What a student's kernel may see of the project: its helper package, environment and data caches.
VISIBLE_ENTRIES = ("workbook", ".venv", ".cache", "images", "release")
MOUNT_POINT = REPO_ROOT / ".cache" / "sandbox-work"
UNSHARE = ("unshare", "--user", "--map-root-user", "--mount", "--net", "--pid", "--fork", "--kill-child")
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_PREFIX = "workbook-sandbox-"
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandboxed run.

    Args:
        cell_timeout: seconds one cell may run before it is interrupted and marked as timed out.
        notebook_timeout: seconds the whole run may take before every process of it is killed.
        memory_bytes: data memory one process may allocate (RLIMIT_DATA) and the run's cgroup cap.
        max_processes: processes and threads the run may have at once.
        output_bytes: outputs kept per cell; the rest is dropped with a note.
        file_bytes: size of one file the notebook writes.
        disk_bytes: size of the kernel's work folder (a tmpfs, when namespaces are available).
        threads: when > 0, OMP/MKL/OpenBLAS/torch threads of the kernel (1 when grading in parallel).
    """
    cell_timeout: int = 120
    notebook_timeout: int = 900
    memory_bytes: int = 6 * 2**30
    max_processes: int = 256
    output_bytes: int = 2**20
    file_bytes: int = 256 * 2**20
    disk_bytes: int = 2**30
    threads: int = 0


@dataclass(frozen=True)
class SandboxResult:
    """What came back from one sandboxed run."""
    notebook: nbformat.NotebookNode | None
    status: str  # "ok", "timeout", "crashed"
    message: str
    isolated: bool
    protections: tuple[str, ...] = ()  # how each limit was enforced in this run
    degraded: tuple[str, ...] = ()  # protections missing in this run, for the grading log


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
    # A folder holding the project itself (submissions passed as a parent of the repo) cannot be hidden
    # without hiding the kernel's own environment; the project's instructor entries are hidden anyway.
    return hidden + [Path(p) for p in extra if not REPO_ROOT.is_relative_to(Path(p).resolve())]


def read_only_paths() -> list[str]:
    """The project's visible folders and the Python installation(s) the kernel runs from."""
    paths = [REPO_ROOT / e for e in VISIBLE_ENTRIES if (REPO_ROOT / e).exists()]
    for prefix in {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()}:
        if not prefix.is_relative_to(REPO_ROOT):
            paths.append(prefix)
    return [str(p) for p in paths]


# ---------------------------------------------------------------- cgroups
def _own_cgroup(controller: str) -> Path | None:
    """The folder of this process's cgroup for `controller` (v1), or of the unified hierarchy (v2)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return CGROUP_ROOT / controller / path.lstrip("/")
        if controller == "" and controllers == "":
            return CGROUP_ROOT / path.lstrip("/")
    return None


class Cgroups:
    """The run's own pids and memory cgroups (v2, or v1 controllers), when this machine allows creating them."""

    def __init__(self, limits: Limits):
        self.folders: list[Path] = []
        self.enforced: dict[str, str] = {}
        name = f"{CGROUP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        if (CGROUP_ROOT / "cgroup.controllers").exists():  # cgroup v2
            parent = _own_cgroup("")
            settings = {"pids": ("pids.max", limits.max_processes), "memory": ("memory.max", limits.memory_bytes)}
            folder = self._make(parent, name)
            if folder is not None:
                for key, (knob, value) in settings.items():
                    if self._set(folder, knob, value):
                        self.enforced[key] = f"cgroup v2 {knob}={value}"
            return
        for controller, knobs in (("pids", [("pids.max", limits.max_processes)]),
                                  ("memory", [("memory.limit_in_bytes", limits.memory_bytes),
                                              ("memory.memsw.limit_in_bytes", limits.memory_bytes)])):
            parent = _own_cgroup(controller)
            folder = self._make(parent, name)
            if folder is None:
                continue
            if self._set(folder, *knobs[0]):
                for knob in knobs[1:]:
                    self._set(folder, *knob)
                self.enforced[controller] = f"cgroup v1 {knobs[0][0]}={knobs[0][1]}"

    def _make(self, parent: Path | None, name: str) -> Path | None:
        if parent is None or not parent.is_dir():
            return None
        _remove_stale(parent)
        try:
            (parent / name).mkdir()
        except OSError:
            return None
        self.folders.append(parent / name)
        return parent / name

    @staticmethod
    def _set(folder: Path, knob: str, value: int) -> bool:
        try:
            (folder / knob).write_text(str(value))
            return True
        except OSError:
            return False

    def join(self) -> None:
        """Move the calling process into every cgroup of the run (called in the child before exec)."""
        for folder in self.folders:
            (folder / "cgroup.procs").write_text(str(os.getpid()))

    def kill_all(self) -> None:
        """Kill every task left in the run's cgroups, then remove them."""
        for folder in self.folders:
            for _ in range(100):
                pids = _tasks(folder)
                if not pids:
                    break
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
                time.sleep(0.05)
            try:
                folder.rmdir()
            except OSError as e:
                log.warning("could not remove cgroup %s: %s", folder, e)


def _tasks(folder: Path) -> list[int]:
    try:
        return [int(p) for p in (folder / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


def _remove_stale(parent: Path) -> None:
    # Cgroups of runs whose grader was killed (SIGKILL leaves no chance to clean up).
    for folder in parent.glob(f"{CGROUP_PREFIX}*"):
        try:
            owner = int(folder.name[len(CGROUP_PREFIX):].split("-")[0])
        except ValueError:
            continue
        if owner == os.getpid() or Path(f"/proc/{owner}").exists():
            continue
        for pid in _tasks(folder):
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            folder.rmdir()
        except OSError:
            pass


_PR_SET_PDEATHSIG = 1


def _child_setup(cgroups: Cgroups):
    def setup():
        # Die with the grader: a killed grader must not leave kernels running.
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except Exception:
            pass
        cgroups.join()
    return setup


def run_sandboxed(nb: nbformat.NotebookNode, workdir: Path, *, cell_timeout: int | None = None,
                  notebook_timeout: int | None = None, hide: list[Path], env: dict[str, str] | None = None,
                  limits: Limits | None = None) -> SandboxResult:
    """Execute `nb` with `workdir` as its only writable folder.

    Args:
        nb: the notebook to run (trusted cells already restored by nbgrader).
        workdir: a fresh folder holding the grader's inputs; the kernel sees it as its working folder.
        cell_timeout: overrides `limits.cell_timeout`.
        notebook_timeout: overrides `limits.notebook_timeout`.
        hide: grading folders to hide from the kernel (gradebook, other submissions, ...).
        env: extra environment variables for the kernel.
        limits: the run's resource limits (default: `Limits()`).
    """
    limits = limits or Limits()
    if cell_timeout is not None or notebook_timeout is not None:
        limits = Limits(**{**limits.__dict__, **({"cell_timeout": cell_timeout} if cell_timeout else {}),
                           **({"notebook_timeout": notebook_timeout} if notebook_timeout else {})})
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, workdir / "submission.ipynb")
    isolated = isolation_available()
    inside = MOUNT_POINT if isolated else workdir
    cgroups = Cgroups(limits)
    protections = [f"time: {limits.cell_timeout} s per cell (interrupt), {limits.notebook_timeout} s per notebook (kill)",
                   f"output: {limits.output_bytes} bytes per cell", f"file size: RLIMIT_FSIZE={limits.file_bytes}",
                   f"memory per process: RLIMIT_DATA={limits.memory_bytes}"]
    degraded = []
    if "memory" in cgroups.enforced:
        protections.append(f"memory of the run: {cgroups.enforced['memory']}")
    else:
        degraded.append("no memory cgroup could be created: only the per-process RLIMIT_DATA limits memory, "
                        "so several processes together may use more")
    if "pids" in cgroups.enforced:
        protections.append(f"processes: {cgroups.enforced['pids']}")
    elif os.getuid() == 0:
        degraded.append("no pids cgroup could be created and RLIMIT_NPROC is not enforced for root: "
                        "the process count is NOT limited (a fork bomb is stopped only by the notebook time limit)")
    else:
        protections.append(f"processes: RLIMIT_NPROC={limits.max_processes} (per uid)")
    args = [sys.executable, "-m", "autograder.sandbox_runner", "--workdir", str(inside),
            "--cell-timeout", str(limits.cell_timeout),
            "--notebook-timeout", str(limits.notebook_timeout), "--memory", str(limits.memory_bytes),
            "--output-bytes", str(limits.output_bytes), "--file-bytes", str(limits.file_bytes)]
    if "pids" not in cgroups.enforced:
        args += ["--nproc", str(limits.max_processes)]
    if isolated:
        MOUNT_POINT.mkdir(parents=True, exist_ok=True)
        args += ["--bind", str(workdir), "--project", str(REPO_ROOT), "--disk-bytes", str(limits.disk_bytes),
                 "--read-only", *read_only_paths()]
        for path in hidden_paths(hide):
            args += ["--hide", str(path)]
        cmd = [*UNSHARE, *args]
        protections += ["namespaces: user, mount, net, pid (unshare)", "files: project read-only, instructor files hidden",
                        f"disk: work folder is a tmpfs of {limits.disk_bytes} bytes, /tmp private"]
    else:
        degraded.append("namespaces are unavailable (unshare failed): the notebook runs without file hiding, "
                        "read-only mounts, a size-limited work folder or network isolation")
        cmd = args
    for line in degraded:
        log.warning("SANDBOX DEGRADED: %s", line)
    kernel_env = {k: v for k, v in os.environ.items() if not k.startswith(("NBGRADER", "JPY_"))}
    if limits.threads > 0:
        kernel_env.update({var: str(limits.threads) for var in THREAD_VARS})
    kernel_env.update(env or {})
    kernel_env.update({"WORKBOOK_GRADING_DIR": str(inside / ".grading"), "HOME": str(inside),
                       "MPLCONFIGDIR": str(inside / ".matplotlib"), "PYTHONDONTWRITEBYTECODE": "1"})
    kernel_env.pop("PYTHONPATH", None)
    proc = subprocess.Popen(cmd, cwd=workdir, env=kernel_env, start_new_session=True,
                            preexec_fn=_child_setup(cgroups), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    timed_out = False
    try:
        output, _ = proc.communicate(timeout=limits.notebook_timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc)
        output, _ = proc.communicate()
    finally:
        _kill_group(proc)
        cgroups.kill_all()
    common = dict(isolated=isolated, protections=tuple(protections), degraded=tuple(degraded))
    if timed_out:
        return SandboxResult(_read(workdir), "timeout",
                             f"the notebook ran longer than {limits.notebook_timeout} s and was stopped", **common)
    text = output.decode(errors="replace")[-2000:]
    executed = _read(workdir)
    if proc.returncode != 0 or executed is None:
        if "kernel died" in text:
            message = "the kernel died mid-notebook (os._exit, a signal, or the memory limit); later cells never ran"
        else:
            message = f"the notebook run ended abnormally (exit {proc.returncode}): {text[-300:]}"
        return SandboxResult(executed, "crashed", message, **common)
    return SandboxResult(executed, "ok", "", **common)


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

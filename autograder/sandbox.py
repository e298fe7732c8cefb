"""Phase 1 of grading: run one submitted notebook in an isolated kernel and bring back its outputs.

The notebook runs under `autograder.sandbox_runner` inside bubblewrap (`bwrap`), on a file system built
from an allowlist (`autograder.sandbox_view`: Python, the venv, the helper package, the data cache and
system libraries read-only; a size-limited tmpfs as the work folder; a private /tmp; a minimal /dev; its
own /proc), with an allowlisted environment, as an unprivileged uid in new user, mount, pid, network,
ipc and uts namespaces. The grader hands the runner a descriptor of its folder for this run: the runner
copies the inputs in and writes the executed notebook and the recordings back through it; no host path
of the grading root or the class exists inside. The kernel talks to the runner over Unix sockets
(Jupyter's `ipc` transport), which a new network namespace does not cut off.

Limits (each with a fallback, and every fallback named in the grading log, see `Limits`):
- time: per cell (nbclient interrupts the cell) and per notebook (every process of the run is killed);
- memory: RLIMIT_DATA per process (a MemoryError in the cell; unlike RLIMIT_AS it leaves the large
  PROT_NONE address reservations of CUDA and torch alone) and, where this machine lets us create a
  memory cgroup, a cap on the whole run (that limit plus the runner's share, `RUNNER_MEMORY`);
- processes: a pids cgroup (`pids.max`); without one, RLIMIT_NPROC, which Linux does not enforce for
  root (uid 0 outside the namespace), so the log says the limit is missing when the grader runs as root.
  A notebook that meets the limit once gets an OSError and goes on; one whose processes keep being refused
  for `FORK_BOMB_SECONDS` (a fork bomb, whose copies fork on after its cell is interrupted, keeping every
  core busy until the notebook's limit) is stopped like a notebook past its time limit;
- output: at most `output_bytes` of outputs per cell are kept (the runner drops the rest and interrupts
  a flooding cell);
- files: RLIMIT_FSIZE per file; the work folder is a tmpfs of `disk_bytes` that disappears with the run.
At the end every process of the run is killed: the runner's process group, the pid namespace (its
init dies), and every task still in the run's cgroups.

Without bubblewrap the grader refuses to grade (`SandboxUnavailable`) unless the instructor asks for an
unsafe run (`unsafe=True`, the CLI's --unsafe-no-sandbox), which the grading log, the table and the CSV
name. `degraded_reasons()` says, before any run, which protections this machine would miss.
"""
import ctypes
import functools
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import nbformat

from autograder import sandbox_view
from autograder.sandbox_view import HOME, RUNNER, RUNNER_SOURCE
from workbook.grading_folder import RESULTS

__all__ = ["SandboxResult", "Limits", "run_sandboxed", "isolation_available", "degraded_reasons",
           "SandboxUnavailable", "REPO_ROOT", "NO_BWRAP"]

log = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[1]
BWRAP = "bwrap"
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_PREFIX = "workbook-sandbox-"
NO_BWRAP = ("bubblewrap (bwrap) cannot run here, so kernels would see the whole machine: install it with "
            "`make sandbox-deps` (apt-get install bubblewrap), or grade without a sandbox with --unsafe-no-sandbox")
UNSAFE = ("UNSAFE: graded without a sandbox (--unsafe-no-sandbox): the kernel could read and write "
          "everything the grader can, and reach the network")


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or cannot create namespaces, and no unsafe run was asked for."""


# The runner's share of the run's memory cap, on top of the kernel's own limit: it holds the notebook and the
# last output messages (a print flood's are 100-170 MB each). Without it, a kernel near its limit is killed by
# the cap, losing every later cell, instead of getting a MemoryError in the cell.
RUNNER_MEMORY = 2**30
# Forks refused at `pids.max` in every poll for this long: a fork bomb, not a program that met the limit once.
FORK_BOMB_SECONDS = 2.0
POLL_SECONDS = 0.5


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandboxed run.

    Args:
        cell_timeout: seconds one cell may run before it is interrupted and marked as timed out.
        notebook_timeout: seconds the whole run may take before every process of it is killed.
        memory_bytes: data memory one process may allocate (RLIMIT_DATA); the run's cgroup cap is this plus
            `RUNNER_MEMORY`.
        max_processes: processes and threads the run may have at once.
        output_bytes: outputs kept per cell; the rest is dropped with a note.
        file_bytes: size of one file the notebook writes.
        disk_bytes: size of the kernel's work folder, of its /tmp and of its /dev/shm (each a tmpfs).
        threads: when > 0, OMP/MKL/OpenBLAS/torch threads of the kernel (1 when grading in parallel).
        cell_timeouts: (cell key, seconds) pairs that replace `cell_timeout` for those cells; a key is a
            cell's nbgrader grade id or its cell id (`autograder.time_limits` derives them from the
            reference run).
    """
    cell_timeout: int = 120
    notebook_timeout: int = 900
    memory_bytes: int = 6 * 2**30
    max_processes: int = 256
    output_bytes: int = 2**20
    file_bytes: int = 256 * 2**20
    disk_bytes: int = 2**30
    threads: int = 0
    cell_timeouts: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class SandboxResult:
    """What came back from one sandboxed run."""
    notebook: nbformat.NotebookNode | None
    status: str  # "ok", "timeout", "process_limit" (a fork bomb), "crashed"
    message: str
    isolated: bool
    protections: tuple[str, ...] = ()  # how each limit was enforced in this run
    degraded: tuple[str, ...] = ()  # protections missing in this run, for the grading log


@functools.cache
def isolation_available() -> bool:
    """True when bubblewrap is installed and can build a sandbox here (user namespaces allowed)."""
    if shutil.which(BWRAP) is None:
        return False
    trial = [BWRAP, "--unshare-all", "--unshare-user", "--uid", str(sandbox_view.SANDBOX_UID), "--disable-userns",
             "--die-with-parent", "--ro-bind", "/usr", "/usr", *_root_links(), "--proc", "/proc", "--dev", "/dev",
             "--", "/usr/bin/true"]
    try:
        result = subprocess.run(trial, capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    if result.returncode != 0:
        log.warning("bubblewrap cannot build a sandbox here: %s", result.stderr.decode(errors="replace").strip()[:300])
    return result.returncode == 0


def _root_links() -> list[str]:
    # /bin, /lib, ... of a merged-/usr system, so that /usr/bin/true finds its loader.
    return [arg for m in sandbox_view.allowlist(0) if m.kind == "symlink" and m.inside.count("/") == 1
            for arg in ("--symlink", m.source, m.inside)]


def degraded_reasons(limits: "Limits | None" = None) -> tuple[str, ...]:
    """The protections a sandboxed run on this machine would miss, each in one line; empty when none.

    A grading worker calls this before taking work and refuses to grade while it is not empty.
    """
    cgroups = Cgroups(limits or Limits())
    try:
        return tuple(_protections(limits or Limits(), cgroups, isolation_available())[1])
    finally:
        cgroups.kill_all()


def _protections(limits: "Limits", cgroups: "Cgroups", isolated: bool) -> tuple[list[str], list[str]]:
    """(how each limit is enforced, which protections are missing) for a run with these cgroups."""
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
    if isolated:
        protections += ["bubblewrap: new user (uid 65534), mount, pid, net, ipc, uts namespaces",
                        "files: an allowlist, read-only (autograder.sandbox_view); environment: an allowlist",
                        f"disk: work folder, /tmp and /dev/shm are tmpfs of {limits.disk_bytes} bytes each"]
    else:
        degraded.append(NO_BWRAP)
    return protections, degraded


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
        self.pids_events: Path | None = None  # the pids cgroup's event counts, where `pids.max` is enforced
        name = f"{CGROUP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        memory = limits.memory_bytes + RUNNER_MEMORY
        if (CGROUP_ROOT / "cgroup.controllers").exists():  # cgroup v2
            parent = _own_cgroup("")
            settings = {"pids": ("pids.max", limits.max_processes), "memory": ("memory.max", memory)}
            folder = self._make(parent, name)
            if folder is not None:
                for key, (knob, value) in settings.items():
                    if self._set(folder, knob, value):
                        self.enforced[key] = f"cgroup v2 {knob}={value}"
                if "pids" in self.enforced:
                    self.pids_events = folder / "pids.events"
            return
        for controller, knobs in (("pids", [("pids.max", limits.max_processes)]),
                                  ("memory", [("memory.limit_in_bytes", memory), ("memory.memsw.limit_in_bytes", memory)])):
            parent = _own_cgroup(controller)
            folder = self._make(parent, name)
            if folder is None:
                continue
            if self._set(folder, *knobs[0]):
                for knob in knobs[1:]:
                    self._set(folder, *knob)
                self.enforced[controller] = f"cgroup v1 {knobs[0][0]}={knobs[0][1]}"
                if controller == "pids":
                    self.pids_events = folder / "pids.events"

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

    def refused_forks(self) -> int:
        """How many times the pids cgroup has refused a new process or thread so far (0 without one)."""
        if self.pids_events is None:
            return 0
        try:
            return int(dict(line.split() for line in self.pids_events.read_text().splitlines()).get("max", 0))
        except (OSError, ValueError):
            return 0

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
                  limits: Limits | None = None, unsafe: bool = False) -> SandboxResult:
    """Execute `nb` with `workdir` as its only writable folder.

    Args:
        nb: the notebook to run (trusted cells already restored by nbgrader).
        workdir: a fresh folder holding the grader's inputs; the kernel works in a copy of it.
        cell_timeout: overrides `limits.cell_timeout`.
        notebook_timeout: overrides `limits.notebook_timeout`.
        hide: grading folders the kernel must not see (gradebook, other submissions, ...): none of them
            may lie inside a folder the sandbox shows (ValueError otherwise).
        env: environment variables for the kernel, from `sandbox_view.FROM_GRADER` or WORKBOOK_*.
        limits: the run's resource limits (default: `Limits()`).
        unsafe: without bubblewrap, run the notebook anyway, unsandboxed (else SandboxUnavailable).
    """
    limits = limits or Limits()
    if cell_timeout is not None or notebook_timeout is not None:
        limits = Limits(**{**limits.__dict__, **({"cell_timeout": cell_timeout} if cell_timeout else {}),
                           **({"notebook_timeout": notebook_timeout} if notebook_timeout else {})})
    isolated = isolation_available()
    if not isolated and not unsafe:
        raise SandboxUnavailable(NO_BWRAP)
    mounts = sandbox_view.allowlist(limits.disk_bytes)
    _check_hidden(mounts, hide)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, workdir / "submission.ipynb")
    cgroups = Cgroups(limits)
    protections, degraded = _protections(limits, cgroups, isolated)
    if not isolated:
        degraded[-1] = UNSAFE
    for line in degraded:
        log.warning("SANDBOX DEGRADED: %s", line)
    home = HOME if isolated else str(workdir)
    kernel_env = sandbox_view.kernel_environment(home, os.environ, env or {}, limits.threads, isolated)
    results = os.open(workdir, os.O_RDONLY | os.O_DIRECTORY)
    runner = ["--workdir", home, "--results-fd", str(results), "--recordings", str(RESULTS),
              "--cell-timeout", str(limits.cell_timeout),
              "--notebook-timeout", str(limits.notebook_timeout), "--memory", str(limits.memory_bytes),
              "--output-bytes", str(limits.output_bytes), "--file-bytes", str(limits.file_bytes),
              "--cell-timeouts", json.dumps(dict(limits.cell_timeouts))]
    if "pids" not in cgroups.enforced:
        runner += ["--nproc", str(limits.max_processes)]
    fds = [results]
    if isolated:
        options, files = sandbox_view.bwrap_options(mounts, kernel_env)
        for key, text in files.items():
            fds.append(_memfd(text))
            options = [str(fds[-1]) if a == key else a for a in options]
        # Through a descriptor: the sandbox's init (pid 1, bwrap) shows the kernel its command line, which
        # must not name host paths.
        fds.append(_memfd("\0".join(options) + "\0"))
        cmd = [BWRAP, "--args", str(fds[-1]), "--", sandbox_view.interpreter(), RUNNER, *runner]
    else:
        cmd = [sys.executable, str(RUNNER_SOURCE), *runner]
    try:
        proc = subprocess.Popen(cmd, cwd=workdir, env=kernel_env, start_new_session=True, stdin=subprocess.DEVNULL,
                                preexec_fn=_child_setup(cgroups), pass_fds=fds,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    finally:
        for fd in fds:
            os.close(fd)
    try:
        stopped, output = _wait(proc, limits.notebook_timeout, cgroups)
    finally:
        _kill_group(proc)
        cgroups.kill_all()
    common = dict(isolated=isolated, protections=tuple(protections), degraded=tuple(degraded))
    if stopped == "timeout":
        return SandboxResult(_read(workdir), "timeout",
                             f"the notebook ran longer than {limits.notebook_timeout} s and was stopped", **common)
    if stopped == "process_limit":
        return SandboxResult(_read(workdir), "process_limit",
                             f"the notebook kept starting processes beyond its limit of {limits.max_processes} processes "
                             f"and threads (a fork bomb) and was stopped; later cells never ran", **common)
    text = output.decode(errors="replace")[-2000:]
    executed = _read(workdir)
    if proc.returncode != 0 or executed is None:
        if "kernel died" in text:
            message = "the kernel died mid-notebook (os._exit, a signal, or the memory limit); later cells never ran"
        else:
            message = f"the notebook run ended abnormally (exit {proc.returncode}): {text[-300:]}"
        return SandboxResult(executed, "crashed", message, **common)
    return SandboxResult(executed, "ok", "", **common)


def _wait(proc: subprocess.Popen, seconds: float, cgroups: Cgroups) -> tuple[str, bytes]:
    """Wait for the run, reading its output: ("", output) when it ended, ("timeout", output) after `seconds`,
    ("process_limit", output) at a fork bomb; a stopped run is killed first."""
    deadline = time.monotonic() + seconds
    refused, refusing_since, stopped = cgroups.refused_forks(), None, "timeout"
    while (left := deadline - time.monotonic()) > 0:
        try:
            return "", proc.communicate(timeout=min(POLL_SECONDS, left))[0]
        except subprocess.TimeoutExpired:
            pass
        now = cgroups.refused_forks()
        refusing_since = (refusing_since or time.monotonic()) if now > refused else None
        refused = now
        if refusing_since is not None and time.monotonic() - refusing_since >= FORK_BOMB_SECONDS:
            stopped = "process_limit"
            break
    _kill_group(proc)
    return stopped, proc.communicate()[0]


def _memfd(text: str) -> int:
    """A descriptor of an in-memory file holding `text`, read from its start (bubblewrap's --args, data files)."""
    fd = os.memfd_create("sandbox", 0)
    os.write(fd, text.encode())
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _check_hidden(mounts: list, hide: list[Path]) -> None:
    for folder in hide:
        folder = Path(folder).resolve()
        for m in mounts:
            if m.kind == "ro" and folder.is_relative_to(m.source):
                raise ValueError(f"{folder} must stay hidden from kernels but lies inside {m.source}, which they see "
                                 f"read-only at {m.inside}; grade into (or from) a folder outside it")


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

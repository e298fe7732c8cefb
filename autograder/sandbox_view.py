"""What a sandboxed kernel sees: the file system built from an allowlist, and an allowlisted environment.

bubblewrap (`bwrap`, the sandbox Flatpak uses) starts the kernel on an empty root and mounts only the
entries of `allowlist()`: the Python installation and the venv, the student helper package, the data
cache and the system libraries, read-only; a size-limited tmpfs as its work folder (`HOME`), its own
/tmp and /dev/shm; a minimal /dev; the /proc of its own pid namespace. Nothing else of the machine
exists inside (no home folder, no other course, no grading root, no /etc/shadow). The course's files
appear at neutral paths (/opt/...), the work folder at /home/student, so no host path of the grading
root or the class reaches the kernel (`/proc/self/mountinfo` names the sources of the read-only binds
only: the Python installation, the venv and the helper package).

The kernel runs as uid/gid 65534 in new user, mount, pid, network, ipc, uts and cgroup namespaces,
cannot create further user namespaces (`--disable-userns`), and dies with the grader (`--die-with-parent`).
"""
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from workbook.grading_folder import GRADING_FOLDER

__all__ = ["Mount", "allowlist", "bwrap_options", "kernel_environment", "interpreter", "HOME", "SANDBOX_UID",
           "RUNNER", "THREAD_VARS", "FROM_GRADER"]

REPO_ROOT = Path(__file__).resolve().parents[1]
SANDBOX_UID = 65534  # "nobody": not root inside, and not the grader's uid
HOME = "/home/student"  # the kernel's work folder
COURSE = "/opt/course"  # the student helper package, its figures and data cache
PYTHON = "/opt/python"  # the base Python installation, when it is not under /usr
VENV = "/opt/venv"
RUNNER = "/opt/grader/sandbox_runner.py"
RUNNER_SOURCE = Path(__file__).with_name("sandbox_runner.py")
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")
# Variables the kernel may take from the grader's environment (or from the caller's `env`); every other
# variable of the grader (tokens, paths, credentials) stays out.
FROM_GRADER = ("CUDA_VISIBLE_DEVICES", "WORKBOOK_FAST", *THREAD_VARS)
# The few /etc files the dynamic linker, Python and fontconfig (Pillow, matplotlib) need; passwd, group and
# hosts are written for the sandbox.
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "nsswitch.conf", "localtime", "fonts")
PASSWD = f"root:x:0:0:root:/nonexistent:/usr/sbin/nologin\nstudent:x:{SANDBOX_UID}:{SANDBOX_UID}:student:{HOME}:/usr/sbin/nologin\n"
GROUP = f"root:x:0:\nstudent:x:{SANDBOX_UID}:\n"
HOSTS = "127.0.0.1 localhost\n::1 localhost\n"
SYSTEM_ROOTS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")


@dataclass(frozen=True)
class Mount:
    """One entry of the kernel's file system.

    Args:
        inside: the path in the sandbox.
        kind: "ro" (read-only bind of `source`), "device" (a bound device node), "tmpfs" (writable, `size`
            bytes), "data" (a read-only file holding `source` as text), "symlink" (to `source`), "dir",
            "proc" (the pid namespace's own /proc), "dev" (bubblewrap's minimal /dev).
        source: the host path, the file's text or the link's target.
        size: bytes of a tmpfs.
    """
    inside: str
    kind: str
    source: str = ""
    size: int = 0

    @property
    def writable(self) -> bool:
        return self.kind == "tmpfs"


def _python_layout() -> tuple[list[Mount], str, dict[str, str]]:
    """Mounts of the Python installation and venv, the interpreter's path inside, and variables it needs.

    The venv's `bin/python` is a symlink into the base installation (pyenv's, under the grader's home);
    inside, the base appears at /opt/python (unless it is under /usr) and the venv at /opt/venv with a
    pyvenv.cfg that points there.
    """
    base, prefix = Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve()
    name = Path(sys.executable).resolve().name
    mounts, env = [], {}
    if base.is_relative_to("/usr"):
        base_inside = str(base)
    else:
        base_inside = PYTHON
        mounts.append(Mount(PYTHON, "ro", str(base)))
        env["LD_LIBRARY_PATH"] = f"{PYTHON}/lib"  # pyenv's python finds libpython by an absolute RUNPATH
    if prefix == base:
        return mounts, f"{base_inside}/bin/{name}", env
    mounts += [Mount(f"{VENV}/bin", "dir"),
               Mount(f"{VENV}/bin/python", "symlink", f"{base_inside}/bin/{name}"),
               Mount(f"{VENV}/bin/python3", "symlink", "python"),
               Mount(f"{VENV}/lib", "ro", str(prefix / "lib"))]
    if (prefix / "lib64").is_symlink():
        mounts.append(Mount(f"{VENV}/lib64", "symlink", "lib"))
    if (prefix / "share").is_dir():
        mounts.append(Mount(f"{VENV}/share", "ro", str(prefix / "share")))
    version = ".".join(map(str, sys.version_info[:3]))
    mounts.append(Mount(f"{VENV}/pyvenv.cfg", "data",
                        f"home = {base_inside}/bin\ninclude-system-site-packages = false\nversion = {version}\n"))
    return mounts, f"{VENV}/bin/python", env


def interpreter() -> str:
    """The kernel's Python inside the sandbox."""
    return _python_layout()[1]


def _course_mounts() -> list[Mount]:
    from workbook.cache import cache_dir
    mounts = [Mount(f"{COURSE}/workbook", "ro", str(REPO_ROOT / "workbook"))]
    if (REPO_ROOT / "images").is_dir():
        mounts.append(Mount(f"{COURSE}/images", "ro", str(REPO_ROOT / "images")))
    data = cache_dir() / "data"
    if data.is_dir():
        mounts.append(Mount(f"{COURSE}/.cache/data", "ro", str(data.resolve())))
    return mounts


def _system_mounts() -> list[Mount]:
    mounts = [Mount("/usr", "ro", "/usr")]
    for name in SYSTEM_ROOTS:
        host = Path("/") / name
        if host.is_symlink():
            mounts.append(Mount(f"/{name}", "symlink", os.readlink(host)))
        elif host.is_dir():
            mounts.append(Mount(f"/{name}", "ro", str(host)))
    mounts += [Mount(f"/etc/{name}", "ro", f"/etc/{name}") for name in ETC_FILES if Path("/etc", name).exists()]
    mounts += [Mount("/etc/passwd", "data", PASSWD), Mount("/etc/group", "data", GROUP),
               Mount("/etc/hosts", "data", HOSTS)]
    return mounts


def gpu_devices() -> list[str]:
    """The NVIDIA device nodes of this machine (/dev/nvidia0, /dev/nvidiactl, /dev/nvidia-uvm, ...)."""
    return sorted(str(p) for p in Path("/dev").glob("nvidia*"))


def allowlist(disk_bytes: int) -> list[Mount]:
    """Everything the kernel's file system holds, in mount order (a later mount may sit inside an earlier one).

    Args:
        disk_bytes: size of each writable tmpfs (the work folder, /tmp, /dev/shm); their memory also
            counts against the run's memory cgroup.
    """
    python, _, _ = _python_layout()
    mounts = [*_system_mounts(), *python, *_course_mounts(), Mount(RUNNER, "ro", str(RUNNER_SOURCE)),
              Mount("/proc", "proc"), Mount("/dev", "dev"), Mount("/dev/shm", "tmpfs", size=disk_bytes),
              Mount("/tmp", "tmpfs", size=disk_bytes), Mount(HOME, "tmpfs", size=disk_bytes)]
    # CUDA inside the kernel: the device nodes (the driver's libraries are under /usr, its /proc/driver
    # entries in the sandbox's own /proc).
    mounts += [Mount(node, "device", node) for node in gpu_devices()]
    return mounts


def kernel_environment(home: str, grader: Mapping[str, str], extra: Mapping[str, str], threads: int,
                       isolated: bool) -> dict[str, str]:
    """The kernel's whole environment: fixed values, and only the `FROM_GRADER` variables of the grader.

    Args:
        home: the kernel's work folder as the kernel sees it.
        grader: the grader's environment (os.environ).
        extra: variables the caller sets (WORKBOOK_FAST, CUDA_VISIBLE_DEVICES, other WORKBOOK_* settings).
        threads: when > 0, the thread count of OpenMP, MKL, OpenBLAS and numexpr.
        isolated: True inside bubblewrap (course files at /opt/...), False for an unsandboxed run.
    """
    env = {k: v for k, v in grader.items() if k in FROM_GRADER}
    env.update({k: v for k, v in extra.items() if k in FROM_GRADER or k.startswith("WORKBOOK_")})
    if threads > 0:
        env.update({var: str(threads) for var in THREAD_VARS})
    if isolated:
        _, python, python_env = _python_layout()
        env.update(python_env)
        env.update(PATH=f"{Path(python).parent}:/usr/bin:/bin", PYTHONPATH=COURSE, WORKBOOK_CACHE=f"{COURSE}/.cache")
        nvidia = [p for p in ("/usr/local/nvidia/lib64", "/usr/local/nvidia/lib") if Path(p).is_dir()]
        if nvidia:  # containers with NVIDIA's driver libraries there name them in LD_LIBRARY_PATH
            env["LD_LIBRARY_PATH"] = ":".join(filter(None, [env.get("LD_LIBRARY_PATH"), *nvidia]))
    else:
        from workbook.cache import cache_dir
        env.update(PATH=f"{Path(sys.executable).parent}:/usr/bin:/bin", WORKBOOK_CACHE=str(cache_dir()))
    env.update(HOME=home, LANG="C.UTF-8", TMPDIR="/tmp", MPLCONFIGDIR=f"{home}/.matplotlib",
               WORKBOOK_GRADING_DIR=f"{home}/{GRADING_FOLDER}", PYTHONDONTWRITEBYTECODE="1")
    return env


def bwrap_options(mounts: list[Mount], env: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
    """bubblewrap's options (everything before the command) for a sandbox of `mounts` with exactly `env`.

    Returns (options, files): "data" mounts read their text from a descriptor; `files` maps each
    placeholder "{fd:N}" in the options to the text the caller must hand over on that descriptor.
    """
    args = ["--unshare-all", "--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
            "--disable-userns", "--die-with-parent", "--new-session", "--hostname", "sandbox", "--clearenv"]
    files = {}
    for m in mounts:
        if m.kind == "ro":
            args += ["--ro-bind", m.source, m.inside]
        elif m.kind == "device":
            args += ["--dev-bind", m.source, m.inside]
        elif m.kind == "tmpfs":
            args += ["--size", str(m.size), "--perms", "0700", "--tmpfs", m.inside]
        elif m.kind == "data":
            key = f"{{fd:{len(files)}}}"
            files[key] = m.source
            args += ["--ro-bind-data", key, m.inside]
        elif m.kind == "symlink":
            args += ["--symlink", m.source, m.inside]
        elif m.kind == "dir":
            args += ["--dir", m.inside]
        elif m.kind == "proc":
            args += ["--proc", m.inside]
        elif m.kind == "dev":
            args += ["--dev", m.inside]
        else:
            raise ValueError(f"unknown mount kind {m.kind!r} for {m.inside}")
    for key, value in env.items():
        args += ["--setenv", key, value]
    # The root and /dev (bubblewrap's tmpfs holding the mount points and device nodes) become read-only;
    # the tmpfs mounts on them stay writable.
    return [*args, "--remount-ro", "/", "--remount-ro", "/dev", "--chdir", HOME], files

"""Set up the course of `make hub` on this machine (as root): Unix users, the exchange, the instructor's course.

Creates, and leaves as they are when they already exist:

- one instructor and N students as real local Unix users (home folders 0700) with generated passwords,
  written to <state>/passwords.txt (readable by root only);
- nbgrader's exchange, <state>/exchange, writable by everyone as nbgrader's documentation asks
  ("chmod ugo+rw"); nbgrader itself gives each course's inbound folder 0733 (students may write,
  not list) and its outbound folder 0755 when the instructor releases;
- a Python every user may run: a venv on a copy of `.venv`'s base interpreter, with `.venv`'s packages
  (the original may sit in root's home, out of other users' reach);
- the instructor's course folder ~instructor/course: the master notebooks (all, or those given), its
  nbgrader_config.py (formgrader's course: the sandboxed grader writes its gradebook there) and the
  assignment generated into its release/ by nbgrader;
- the students' nbgrader configuration (the exchange and the course id), and <state>/course.json,
  which hub/jupyterhub_config.py reads.

Usage: python hub/setup_course.py [--students 3] [--notebooks 01_imagenette.ipynb ...] [--state DIR]
"""
import argparse
import json
import os
import pwd
import secrets
import shutil
import stat
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from autograder.config import ASSIGNMENT, COURSE_ID  # noqa: E402

DEFAULT_STATE = Path("/srv/sizing-and-tta")
INSTRUCTOR_CONFIG = '''"""nbgrader settings of this course (written by hub/setup_course.py): formgrader and the sandboxed grader."""
from autograder.config import course_config

c = get_config()  # noqa: F821
_course = course_config({root!r}, source_root={root!r} + "/source", release_root={root!r} + "/release")
# Formgrader lists an assignment only when these folders are relative to the course root.
_course.CourseDirectory.source_directory = "source"
_course.CourseDirectory.release_directory = "release"
# `nbgrader collect` (formgrader's Collect) puts submissions here; the grader copies them into submitted/
# (grade with: python -m autograder.cli grade collected --grading-root . --source source).
_course.CourseDirectory.submitted_directory = "collected"
_course.Exchange.root = {exchange!r}
c.merge(_course)
'''
STUDENT_CONFIG = '''"""nbgrader settings of the students (written by hub/setup_course.py): the exchange and the course."""
import sys

c = get_config()  # noqa: F821
c.CourseDirectory.course_id = {course!r}
c.Exchange.root = {exchange!r}
# Submissions readable by their student and the instructor only, not by the other students (hub/private_submit.py).
sys.path.insert(0, {hub!r})
c.ExchangeFactory.submit = "private_submit.PrivateSubmit"
# Validate runs the notebook in a fresh kernel; importing torch and fastai on a busy shared machine can
# take longer than nbgrader's 30 s per cell.
c.Execute.timeout = 300
'''


def run(*cmd: str, user: str | None = None, **kw) -> subprocess.CompletedProcess:
    """Run a command (as `user` when given); a failure stops the set-up with the command's error."""
    if user:
        kw.update(user=user, group=pwd.getpwnam(user).pw_gid, extra_groups=[])
    done = subprocess.run(list(cmd), capture_output=True, text=True, **kw)
    if done.returncode != 0:
        who = f" (as {user})" if user else ""
        sys.exit(f"error: `{' '.join(cmd)}`{who} failed: {(done.stderr or done.stdout).strip()[-600:]}")
    return done


def ensure_user(name: str, passwords: dict[str, str]) -> Path:
    """A local user with a home folder only they can read, and a password (kept when already set here)."""
    try:
        home = Path(pwd.getpwnam(name).pw_dir)
    except KeyError:
        run("useradd", "--create-home", "--shell", "/bin/bash", name)
        home = Path(pwd.getpwnam(name).pw_dir)
    home.chmod(0o700)
    if name not in passwords:
        passwords[name] = secrets.token_urlsafe(12)
        run("chpasswd", input=f"{name}:{passwords[name]}\n")
    return home


def check_reachable(path: Path) -> None:
    """Stop with a clear error when other users cannot reach `path` (every folder above it searchable)."""
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            sys.exit(f"error: {folder} (mode {stat.filemode(mode)}) cannot be searched by other users, and the "
                     f"course's users run the project from {path}: chmod o+x {folder}, or clone the project "
                     f"under a folder they can reach (e.g. /srv or /opt)")


def shared_python(state: Path) -> Path:
    """A Python every user may run, on the packages of `.venv`; returns its interpreter.

    `.venv`'s interpreter links to a base installation that may sit where other users cannot reach it
    (a pyenv build in root's home). So the base is copied to <state>/python (its shared library found
    through LD_LIBRARY_PATH, course.json's `library_path`) and <state>/venv is a virtual environment
    on that copy whose `lib` is `.venv`'s: a venv like `.venv` itself, which the grader's sandbox knows
    how to mount (base at /opt/python, venv at /opt/venv), and whose packages are `.venv`'s.
    """
    base, version = Path(sys.base_prefix), f"{sys.version_info.major}.{sys.version_info.minor}"
    copy = state / "python"
    if not (copy / "bin" / f"python{version}").exists():
        (copy / "bin").mkdir(parents=True, exist_ok=True)
        shutil.copy2(Path(sys.executable).resolve(), copy / "bin" / f"python{version}")
        (copy / "lib").mkdir()
        for lib in (base / "lib").glob(f"libpython{version}*.so*"):
            shutil.copy2(lib, copy / "lib" / lib.name)
        shutil.copytree(base / "lib" / f"python{version}", copy / "lib" / f"python{version}",
                        ignore=shutil.ignore_patterns("site-packages", "test", "__pycache__"))
        (copy / "lib" / f"python{version}" / "site-packages").mkdir()
    venv = state / "venv"
    python = venv / "bin" / "python"
    if not python.exists():
        (venv / "bin").mkdir(parents=True, exist_ok=True)
        (venv / "pyvenv.cfg").write_text(f"home = {copy / 'bin'}\ninclude-system-site-packages = false\n"
                                         f"version = {'.'.join(map(str, sys.version_info[:3]))}\n")
        for name in ("python", "python3", f"python{version}"):
            (venv / "bin" / name).symlink_to(copy / "bin" / f"python{version}")
        # The packages, and Jupyter's extensions, templates and settings (under sys.prefix): `.venv`'s.
        for sub in ("lib", "share", "etc"):
            if (Path(sys.prefix) / sub).exists():
                (venv / sub).symlink_to(Path(sys.prefix) / sub)
    # The project's commands (jupyter, nbgrader, alembic, which nbgrader runs, ...) on this Python.
    for script in Path(sys.prefix, "bin").iterdir():
        text = script.read_text(errors="replace") if script.is_file() and not script.is_symlink() else ""
        if text.startswith("#!") and "python" in text.split("\n", 1)[0] and not (venv / "bin" / script.name).exists():
            (venv / "bin" / script.name).write_text(f"#!{python}\n" + text.split("\n", 1)[1])
            (venv / "bin" / script.name).chmod(0o755)
    found = run(str(python), "-c", "import nbgrader, autograder, sys; print(sys.prefix)",
                env={"LD_LIBRARY_PATH": str(copy / "lib"), "PATH": "/usr/bin:/bin"}).stdout.strip()
    if Path(found) != venv:
        sys.exit(f"error: the shared Python {python} runs in {found}, not in {venv}")
    return python


def instructor_course(home: Path, user: str, python: Path, exchange: Path, notebooks: list[str]) -> Path:
    """The instructor's course: master notebooks, nbgrader_config.py, the generated release."""
    course = home / "course"
    source = course / "source" / ASSIGNMENT
    if not source.exists():
        source.mkdir(parents=True)
        for nb in sorted((REPO / "source" / ASSIGNMENT).glob("*.ipynb")):
            if not notebooks or nb.name in notebooks:
                shutil.copy2(nb, source / nb.name)
        if not any(source.iterdir()):
            sys.exit(f"error: none of {notebooks} is a notebook of source/{ASSIGNMENT}")
    (course / "nbgrader_config.py").write_text(INSTRUCTOR_CONFIG.format(root=str(course), exchange=str(exchange)))
    run("chown", "-R", f"{user}:{user}", str(course))
    if not (course / "release" / ASSIGNMENT).exists():
        run(str(python), "-m", "nbgrader", "generate_assignment", ASSIGNMENT, "--create", "--force",
            user=user, cwd=course, env=user_env(user, python))
    return course


def user_env(user: str, python: Path) -> dict[str, str]:
    entry = pwd.getpwnam(user)
    return {"HOME": entry.pw_dir, "USER": user, "PATH": f"{python.parent}:/usr/bin:/bin",
            "LD_LIBRARY_PATH": str(python.parent.parent.parent / "python" / "lib"),
            "WORKBOOK_CACHE": str(REPO / ".cache"), "FASTAI_HOME": str(REPO / ".cache" / "fastai"),
            "TORCH_HOME": str(REPO / ".cache" / "torch")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=3)
    parser.add_argument("--notebooks", nargs="*", default=[], help="the notebooks of the assignment (default: all)")
    parser.add_argument("--state", type=Path, default=Path(os.environ.get("HUB_STATE", DEFAULT_STATE)))
    parser.add_argument("--prefix", default="tta-", help="prefix of the user names (default tta-)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("error: the hub's set-up creates Unix users: run it as root (sudo make hub)")
    if args.students < 1:
        sys.exit(f"error: --students must be at least 1, got {args.students}")
    state = args.state.resolve()
    if state.is_relative_to("/tmp"):
        sys.exit(f"error: --state {state} is under /tmp, which the grader's sandbox replaces by a private one "
                 f"(the shared Python there would vanish); use a folder such as {DEFAULT_STATE}")
    check_reachable(REPO / ".venv" / "lib")
    state.mkdir(parents=True, exist_ok=True)
    state.chmod(0o755)
    secret_file = state / "passwords.txt"
    passwords = dict(line.split(":", 1) for line in secret_file.read_text().split()) if secret_file.exists() else {}
    instructor = f"{args.prefix}instructor"
    students = [f"{args.prefix}student{i}" for i in range(1, args.students + 1)]
    homes = {name: ensure_user(name, passwords) for name in [instructor, *students]}
    secret_file.touch(mode=0o600)
    secret_file.write_text("".join(f"{n}:{p}\n" for n, p in passwords.items()))
    exchange = state / "exchange"
    exchange.mkdir(exist_ok=True)
    exchange.chmod(0o777)
    python = shared_python(state)
    # The sandbox mounts each kernel's work folder here; the instructor's grader cannot create it in the repo.
    (REPO / ".cache" / "sandbox-work").mkdir(parents=True, exist_ok=True)
    student_config = state / "jupyter-student"
    student_config.mkdir(exist_ok=True)
    (student_config / "nbgrader_config.py").write_text(
        STUDENT_CONFIG.format(course=COURSE_ID, exchange=str(exchange), hub=str(REPO / "hub")))
    course = instructor_course(homes[instructor], instructor, python, exchange, args.notebooks)
    (state / "course.json").write_text(json.dumps({
        "repo": str(REPO), "python": str(python), "library_path": str(state / "python" / "lib"),
        "exchange": str(exchange), "course": str(course),
        "instructor": instructor, "students": students, "student_config": str(student_config),
        "course_id": COURSE_ID, "assignment": ASSIGNMENT}, indent=2))
    print(f"course set up in {state}: instructor {instructor}, students {', '.join(students)}")
    print(f"passwords: {secret_file} (root only)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The gradebook lock is handed to the sandboxing preprocessor, which lets other processes have it while
the sandbox runs, and takes it back afterwards."""
import fcntl
import os
import subprocess
import sys

from nbgrader.converters import Autograde

from autograder.gradebook_lock import GradebookLock
from autograder.grading import ClassSettings
from autograder.pipeline import SandboxedExecute

PROBE = ("import fcntl, os, sys\nfd = os.open(sys.argv[1], os.O_RDWR)\n"
         "try:\n    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n    print('free')\nexcept BlockingIOError:\n    print('held')\n")


def _other_process_sees(lock: GradebookLock) -> str:
    return subprocess.run([sys.executable, "-c", PROBE, str(lock.path)], capture_output=True, text=True, check=True).stdout.strip()


def test_the_lock_is_released_only_inside_released_and_only_while_held(tmp_path):
    lock = GradebookLock(tmp_path)
    with lock.released():  # not held: nothing to release, no error
        pass
    with lock.held():
        assert _other_process_sees(lock) == "held"
        with lock.released():
            assert _other_process_sees(lock) == "free"
        assert _other_process_sees(lock) == "held"
    assert _other_process_sees(lock) == "free"


def test_the_preprocessor_nbgrader_builds_gets_the_very_lock_the_caller_holds(tmp_path):
    lock = GradebookLock(tmp_path)
    api = ClassSettings(tmp_path).api(gradebook_lock=lock)
    preprocessor = SandboxedExecute(parent=Autograde(coursedir=api.coursedir, parent=api))
    assert preprocessor.gradebook_lock is lock  # nbgrader deep-copies its configuration; a copy would unlock nothing
    with lock.held():
        fd = os.open(lock.path, os.O_RDWR)
        with preprocessor.gradebook_lock.released():
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another holder gets it while the sandbox runs
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

"""The lock that serializes access to a grading root's SQLite gradebook across grading processes.

Parallel grading runs one nbgrader call per worker process. A worker holds the lock while nbgrader reads
or writes the gradebook and releases it only while its sandbox runs, so the sandboxes run in parallel
and everything else is serial. The worker hands the lock it holds to `SandboxedExecute` (its
`gradebook_lock` setting), which releases it around the sandbox: no module-level state.
"""
import contextlib
import fcntl
import os
from pathlib import Path

__all__ = ["GradebookLock"]

LOCK_FILE = ".gradebook.lock"  # beside the gradebook, in the grading root


class GradebookLock:
    """An exclusive `flock` on `<grading root>/.gradebook.lock`, held by this process.

    Args:
        grading_root: the folder holding the gradebook.
    """

    def __init__(self, grading_root: Path):
        self.path = Path(grading_root) / LOCK_FILE
        self._fd: int | None = None

    @contextlib.contextmanager
    def held(self):
        """Hold the lock for the block (blocks until no other process holds it)."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._fd = fd
            yield self
        finally:
            self._fd = None
            os.close(fd)  # closing releases the lock

    @contextlib.contextmanager
    def released(self):
        """Let other processes have the lock for the block, then take it back; nothing when not held."""
        fd = self._fd
        if fd is None:
            yield
            return
        fcntl.flock(fd, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_EX)

    # nbgrader copies its configuration, and this object travels in it: a copy must be this lock.
    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

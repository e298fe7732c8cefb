"""The kernel's side of the grader's output limit: stdout and stderr that stop buffering a cell's output past a cap.

The grader interrupts a cell once more than its output limit has arrived (`autograder/sandbox_runner.py`), but a
cell that prints in a loop writes faster than the kernel sends, and the kernel's buffer can reach the memory
limit before the interrupt lands (the kernel then raises MemoryError in its sending thread, or dies). Sandboxed
kernels are started with this stream (`IPKernelApp.outstream_class`): past `$WORKBOOK_KERNEL_OUTPUT_CHARS`
characters, the rest of a cell's output is dropped in the kernel. Here, not in autograder/, because the
sandboxed kernel sees only workbook/; students' own kernels never use it.
"""
import os

from ipykernel.iostream import OutStream

CAP_ENV = "WORKBOOK_KERNEL_OUTPUT_CHARS"


class CappedOutStream(OutStream):
    """ipykernel's OutStream, keeping at most `$WORKBOOK_KERNEL_OUTPUT_CHARS` characters of each cell's output."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._cap = int(os.environ.get(CAP_ENV) or 0)
        self._cell, self._written = None, 0

    def write(self, string):
        if not self._cap or not isinstance(string, str):
            return super().write(string)
        cell = self.parent_header.get("msg_id")
        if cell != self._cell:  # a new cell (execute request) starts counting from zero
            self._cell, self._written = cell, 0
        room = self._cap - self._written
        self._written += len(string)
        if room > 0:
            super().write(string[:room])
        return len(string)

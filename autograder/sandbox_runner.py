"""Runs inside the sandbox: copy the grader's inputs in, then execute the notebook with nbclient.

Started by `autograder.sandbox.run_sandboxed` (inside bubblewrap, from a read-only copy of this file);
not meant to be run by hand. It imports nothing of the autograder (of workbook, the output cap its kernel
uses). `--results-fd` is a descriptor of the grader's folder for this run, the runner's only way out: it
copies the inputs from there into the work folder and writes the executed notebook and the recordings
(regular files only) back. The runner makes itself non-dumpable first, so the kernel (same uid) cannot
open that descriptor through /proc.
"""
import argparse
import atexit
import ctypes
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

# jsonschema (under nbformat) imports the optional IRI checker rfc3987_syntax when it is installed,
# which builds a parser at import: 1-1.7 s of every sandboxed run. The runner never checks IRI formats. (make's
# install leaves the package out, requirements-overrides.txt; this covers an environment installed otherwise.)
sys.modules.setdefault("rfc3987_syntax", None)

import asyncio  # noqa: E402

import nbformat  # noqa: E402
from jupyter_client.manager import AsyncKernelManager  # noqa: E402
from jupyter_client.session import Session  # noqa: E402
from nbclient import NotebookClient  # noqa: E402
from nbclient.exceptions import DeadKernelError  # noqa: E402

from workbook.output_cap import CAP_ENV  # noqa: E402

NOTEBOOK_TIMEOUT = "the notebook's time limit was reached before this cell ran"
_PR_SET_DUMPABLE = 4


def seal(results: int) -> None:
    """Keep the grader's folder to this process: non-dumpable (its /proc/<pid>/fd is closed to other
    processes of the sandbox) and the descriptor closed on exec (the kernel never inherits it)."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    os.set_inheritable(results, False)


def copy_inputs(results: int, workdir: Path) -> None:
    """Copy the grader's inputs (the notebook, .grading/inputs) into the work folder, unless it is that folder."""
    source = Path(f"/proc/self/fd/{results}")
    if os.path.samestat(os.fstat(results), os.stat(workdir)):
        return
    shutil.copytree(source, workdir, dirs_exist_ok=True)


_COPIED: dict[str, tuple[int, int]] = {}


def copy_back(workdir: Path, outside: int, recordings_dir: Path) -> None:
    """Copy the recordings (regular files only, from `recordings_dir` in the work folder) into the grader's folder."""
    def put(src: Path, rel: str) -> None:
        if src.is_symlink() or not src.is_file():
            return
        stat = src.stat()
        if _COPIED.get(rel) == (stat.st_size, stat.st_mtime_ns):
            return
        _COPIED[rel] = (stat.st_size, stat.st_mtime_ns)
        fd = os.open(rel, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600, dir_fd=outside)
        with open(fd, "wb") as dst, src.open("rb") as f:
            shutil.copyfileobj(f, dst)
    recordings = workdir / recordings_dir
    if recordings.is_dir() and not recordings.is_symlink():
        for depth in range(1, len(recordings_dir.parts) + 1):
            try:
                os.mkdir(Path(*recordings_dir.parts[:depth]), 0o700, dir_fd=outside)
            except FileExistsError:
                pass
        for src in recordings.glob("*.pt"):
            put(src, str(recordings_dir / src.name))


GARBLED = "garbled"


class TolerantSession(Session):
    """Jupyter's message session, reading a message the kernel garbled as one that answers no request.

    A print flood near the kernel's memory limit once ended a run with jupyter_client's "Invalid Signature"
    (most likely a multipart send cut short, whose rest the next message supplied). Raising there would end
    the whole run, losing every later cell; nbclient ignores a message with no parent.
    """

    def feed_identities(self, msg_list, copy=True):
        try:
            return super().feed_identities(msg_list, copy)
        except ValueError:  # no delimiter: deserialize drops it
            return [], []

    def deserialize(self, msg_list, content=True, copy=True):
        try:
            return super().deserialize(msg_list, content, copy)
        except (ValueError, TypeError, KeyError, IndexError) as e:
            print(f"[runner] dropped a garbled message from the kernel: {str(e)[:100]}", file=sys.stderr)
            header = {"msg_id": "", "msg_type": GARBLED}
            return {"header": header, "msg_id": "", "msg_type": GARBLED, "parent_header": {}, "metadata": {},
                    "content": {}, "buffers": []}


def _size(msg: dict) -> int:
    """About how many bytes an output message adds; a stream's text is counted without serializing it again,
    so that a flood of prints (hundreds of MB a message) is interrupted without delay."""
    content = msg.get("content", {})
    if msg["msg_type"] == "stream" and isinstance(content.get("text"), str):
        return len(content["text"])
    return len(json.dumps(content, default=str))


class CappedClient(NotebookClient):
    """nbclient's client, keeping at most `output_bytes` of outputs per cell; a flooding cell is interrupted."""

    def __init__(self, *args, output_bytes: int, deadline: float, save, **kw):
        super().__init__(*args, **kw)
        self.output_bytes = output_bytes
        self.deadline = deadline
        self.save = save
        self._sizes: dict[int, int] = {}
        self._interrupted: set[int] = set()
        self._timed_out: set[int] = set()

    def _get_timeout(self, cell):
        # A cell never runs past the notebook's deadline, so the run ends here, not by the grader's kill.
        return max(1, min(super()._get_timeout(cell) or self.timeout, int(self.deadline - time.monotonic())))

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        if time.monotonic() >= self.deadline - 1:  # less than a second left: the limit is reached
            if cell.cell_type == "code":
                cell.outputs = [nbformat.v4.new_output("error", ename="NotebookTimeoutError", evalue=NOTEBOOK_TIMEOUT,
                                                       traceback=[f"NotebookTimeoutError: {NOTEBOOK_TIMEOUT}"])]
            return cell
        try:
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        finally:
            self._explain_interrupt(cell, cell_index)
            self.save()  # what ran so far reaches the grader even if the run is killed later

    async def _async_handle_timeout(self, timeout, cell=None):
        self._timed_out.add(id(cell))
        return await super()._async_handle_timeout(timeout, cell)

    def _explain_interrupt(self, cell, cell_index) -> None:
        # The grader's interrupt shows as KeyboardInterrupt; name the limit that caused it instead.
        if id(cell) in self._timed_out:
            ename, evalue = "CellTimeoutError", f"the cell ran longer than {self._get_timeout(cell)} s and was interrupted"
        elif cell_index in self._interrupted:
            ename, evalue = "OutputLimitError", f"the cell printed more than {self.output_bytes} bytes and was interrupted"
        else:
            return
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        for error in errors:
            if error.get("ename") == "KeyboardInterrupt":
                error["ename"], error["evalue"] = ename, evalue
                error["traceback"] = [f"{ename}: {evalue}"]
        if not errors:
            cell.outputs.append(nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"]))

    def output(self, outs, msg, display_id, cell_index):
        if msg["msg_type"] == "error":  # the cell's own error always reaches the grader
            return super().output(outs, msg, display_id, cell_index)
        size = self._sizes.get(cell_index, 0) + _size(msg)
        self._sizes[cell_index] = size
        if size <= self.output_bytes:
            return super().output(outs, msg, display_id, cell_index)
        if cell_index not in self._interrupted:
            self._interrupted.add(cell_index)
            outs.append(nbformat.v4.new_output(
                "stream", name="stderr",
                text=f"\n[grader] output of this cell exceeded {self.output_bytes} bytes: the rest was dropped "
                     f"and the cell was interrupted\n"))
            asyncio.ensure_future(self.km.interrupt_kernel())
        return None


def set_limits(memory: int, file_bytes: int, nproc: int | None) -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_DATA, (memory, memory))
    if nproc:
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--results-fd", type=int, required=True)
    parser.add_argument("--recordings", type=Path, required=True, help="the recordings' folder, relative to the work folder")
    parser.add_argument("--cell-timeout", type=int, required=True)
    parser.add_argument("--cell-timeouts", type=json.loads, default={}, help="grade id or cell id -> seconds")
    parser.add_argument("--notebook-timeout", type=int, required=True)
    parser.add_argument("--memory", type=int, required=True)
    parser.add_argument("--output-bytes", type=int, required=True)
    parser.add_argument("--file-bytes", type=int, required=True)
    parser.add_argument("--nproc", type=int)
    args = parser.parse_args(argv)
    workdir, outside = Path(args.workdir), args.results_fd
    seal(outside)
    copy_inputs(outside, workdir)
    os.chdir(workdir)
    set_limits(args.memory, args.file_bytes, args.nproc)
    nb = nbformat.read(workdir / "submission.ipynb", as_version=4)
    # The asynchronous manager: a blocking one deadlocks when nbclient interrupts a cell from its event loop.
    # A Unix socket path holds at most 107 bytes: a long work folder (grading without the sandbox, whose work
    # folder is the grader's own) gets the kernel's sockets in a short temporary folder instead.
    sockets = workdir
    if len(str(workdir)) > 60:
        sockets = Path(tempfile.mkdtemp(prefix="wb-kernel-"))
        atexit.register(shutil.rmtree, sockets, True)
    km = AsyncKernelManager(kernel_name="python3", transport="ipc", ip=str(sockets / "kernel"), session=TolerantSession())
    copies = not os.path.samestat(os.fstat(outside), os.stat(workdir))

    def save():
        # Straight into the grader's folder: a kernel that filled its own disk must not lose the notebook.
        fd = os.open(".executed.ipynb.tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600, dir_fd=outside)
        with open(fd, "w", encoding="utf-8") as f:
            f.write(nbformat.writes(nb))
        os.replace(".executed.ipynb.tmp", "executed.ipynb", src_dir_fd=outside, dst_dir_fd=outside)
        if copies:
            copy_back(workdir, outside, args.recordings)

    def cell_timeout(cell):
        # The reference run's limit of this cell (by grade id, then cell id), else the default.
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        return args.cell_timeouts.get(grade_id) or args.cell_timeouts.get(cell.get("id")) or args.cell_timeout

    # The run stops itself a little before the grader's hard kill, so the notebook so far comes back.
    deadline = time.monotonic() + max(1, args.notebook_timeout - 10)
    # The kernel drops a cell's output past twice the limit: more than the limit reaches us (the interrupt below),
    # and a print loop cannot fill the kernel's memory before the interrupt lands (workbook/output_cap.py).
    os.environ[CAP_ENV] = str(2 * args.output_bytes)
    client = CappedClient(nb, km=km, timeout=args.cell_timeout, timeout_func=cell_timeout, allow_errors=True,
                          interrupt_on_timeout=True, output_bytes=args.output_bytes, deadline=deadline, save=save,
                          error_on_timeout={"ename": "CellTimeoutError", "evalue": "the cell ran longer than its time limit",
                                            "traceback": ["CellTimeoutError: the cell ran longer than its time limit"]},
                          kernel_name="python3", resources={"metadata": {"path": str(workdir)}},
                          extra_arguments=["--HistoryManager.hist_file=:memory:",
                                           "--IPKernelApp.outstream_class=workbook.output_cap.CappedOutStream"])
    status = 0
    try:
        client.execute()
    except DeadKernelError as e:
        print(f"kernel died: {e}", file=sys.stderr)
        status = 3
    finally:
        save()
    return status


if __name__ == "__main__":
    sys.exit(main())

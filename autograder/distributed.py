"""Grading on a Dask cluster: the sandboxed recording of a notebook runs on a worker, the rest stays here.

The split follows the trust line. A worker gets one task per notebook, `record_notebook`: the
notebook and the grader-made inputs travel with the task, the worker runs them in its own sandbox
(`autograder.sandbox.run_sandboxed`) and sends back the executed notebook and the recordings, never
more than `RETURN_BYTES`. The coordinator (the machine holding the gradebook) makes the inputs,
judges the recordings and writes every grade; workers need neither the gradebook, nor the
reference solutions, nor a shared file system.

Faults are Dask's to handle: a task whose worker dies or disconnects is run again on another worker
(the scheduler's `allowed_failures`); a killed coordinator loses only the notebooks in flight, which
the next run grades again (the status markers of autograder.resume). A worker whose sandbox is degraded refuses to
start (`dask_setup`, run by `dask worker --preload autograder.distributed`), and a task never returns
a recording made in a degraded sandbox.

Tasks ask for the worker resource `RESOURCE`, which only the preload grants, so a worker started
without it never receives grading work.
"""
import functools
import os
import re
import shutil
import socket
import tempfile
import time
import uuid
from dataclasses import asdict
from pathlib import Path

import nbformat

from autograder.sandbox import Limits, SandboxResult, degraded_reasons, run_sandboxed
from workbook.grading_folder import INPUTS, RESULTS

__all__ = ["RESOURCE", "RETURN_BYTES", "SandboxRefused", "sandbox_degraded", "record_notebook", "bounded",
           "remote_runner", "cluster_slots", "dask_setup"]

RESOURCE = "grading-sandbox"
RETURN_BYTES = 256 * 2**20  # executed notebook + recordings a worker sends back for one notebook
RECORDING_NAME = re.compile(r"[\w.-]+\.pt")
CONNECT_SECONDS = 10  # a scheduler that is up answers at once; connection refused is retried till then
WAIT_MARGIN_SECONDS = 600  # beyond the notebook's own limit: queueing, and reruns after worker faults


class SandboxRefused(RuntimeError):
    """A worker whose sandbox cannot enforce every protection: it does not grade."""


@functools.cache
def sandbox_degraded() -> tuple[str, ...]:
    """The protections this machine's sandbox cannot enforce (empty when it is safe to grade here)."""
    return degraded_reasons()


def _work_root() -> Path:
    """The folder of every sandbox of this worker; each run hides all of it from its kernel. Inside the
    worker's own local directory, which Dask removes when a killed worker's successor starts."""
    from distributed import get_worker
    try:
        base = Path(get_worker().local_directory)
    except ValueError:  # called outside a worker (a direct call)
        base = Path(tempfile.gettempdir()) / f"workbook-sandboxes-{os.getpid()}"
    root = base / "workbook-sandboxes"
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    return root


def record_notebook(task: dict) -> dict:
    """The Dask task: run one notebook with its inputs in this worker's sandbox; return the recordings.

    Args:
        task: {"notebook": notebook JSON, "inputs": {file name: bytes}, "env": kernel variables,
            "limits": `Limits` fields}.

    Returns {"notebook": executed notebook JSON or None, "recordings": {file name: bytes}, "status",
    "message", "isolated", "protections", "worker", "seconds"}. Raises SandboxRefused on a worker whose
    sandbox is degraded, so that nothing recorded there is ever judged.
    """
    refused = sandbox_degraded()
    if refused:
        raise SandboxRefused(f"worker {_worker_name()} refuses grading work, its sandbox is degraded: {'; '.join(refused)}")
    start = time.monotonic()
    root = _work_root()
    workdir = root / uuid.uuid4().hex
    try:
        (workdir / INPUTS).mkdir(parents=True)
        for name, data in task["inputs"].items():
            (workdir / INPUTS / _recording_name(name)).write_bytes(data)
        result = run_sandboxed(nbformat.reads(task["notebook"], as_version=4), workdir, hide=[root],
                               env=task["env"], limits=Limits(**task["limits"]))
        if result.degraded:
            raise SandboxRefused(f"worker {_worker_name()} ran a degraded sandbox, its recording is discarded: "
                                 f"{'; '.join(result.degraded)}")
        # Names are the kernel's choice: one that is not a plain recording name is not the recorder's file.
        recordings = {p.name: p.read_bytes() for p in sorted((workdir / RESULTS).glob("*.pt"))
                      if p.is_file() and not p.is_symlink() and RECORDING_NAME.fullmatch(p.name)}
        notebook = nbformat.writes(result.notebook) if result.notebook is not None else None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return bounded({"notebook": notebook, "recordings": recordings, "status": result.status,
                    "message": result.message, "isolated": result.isolated, "protections": list(result.protections),
                    "worker": _worker_name(), "seconds": time.monotonic() - start})


def bounded(reply: dict, limit: int = RETURN_BYTES) -> dict:
    """The reply as it is when its notebook and recordings fit in `limit` bytes; else a failed run
    without them (a verdict is never made from part of a recording)."""
    size = len(reply["notebook"] or "") + sum(len(b) for b in reply["recordings"].values())
    if size <= limit:
        return reply
    return {**reply, "notebook": None, "recordings": {}, "status": "crashed",
            "message": f"the notebook's outputs and recordings total {size} bytes, more than the {limit} "
                       f"a worker returns; nothing of this run was kept"}


def _worker_name() -> str:
    from distributed import get_worker
    try:
        return f"{get_worker().name} on {socket.gethostname()}"
    except ValueError:  # called outside a worker (a direct call)
        return socket.gethostname()


def _recording_name(name: str) -> str:
    # File names cross machines: only plain names of recordings and inputs, never a path.
    if not RECORDING_NAME.fullmatch(name):
        raise ValueError(f"not a recording file name: {name!r}")
    return name


_CLIENTS: dict[tuple[str, int], object] = {}


def _client(address: str):
    """This process's client of `address`; a new one after the old one gave up on a lost scheduler.
    Keyed by process id: grading workers are forked, and a parent's client is never reused."""
    from distributed import Client
    key = (address, os.getpid())
    client = _CLIENTS.get(key)
    if client is None or client.status not in ("running", "connecting", "newly-created"):
        client = _CLIENTS[key] = Client(address, set_as_default=False, timeout=CONNECT_SECONDS)
    return client


def remote_runner(address: str):
    """A drop-in for `run_sandboxed` that records on the Dask cluster at `address`."""
    def run(nb: nbformat.NotebookNode, workdir: Path, *, hide: list[Path], env: dict[str, str] | None = None,
            limits: Limits | None = None, unsafe: bool = False) -> SandboxResult:
        # `hide` names the coordinator's folders; a worker holds none of them and hides its own.
        if unsafe:
            raise SandboxRefused("grading without a sandbox is never sent to a cluster; drop --scheduler or the unsafe option")
        limits = limits or Limits()
        inputs = {p.name: p.read_bytes() for p in sorted((Path(workdir) / INPUTS).glob("*.pt"))}
        task = {"notebook": nbformat.writes(nb), "inputs": inputs, "env": dict(env or {}), "limits": asdict(limits)}
        client = _client(address)
        future = client.submit(record_notebook, task, pure=False, resources={RESOURCE: 1})
        try:
            reply = future.result(timeout=limits.notebook_timeout + WAIT_MARGIN_SECONDS)
        finally:
            future.release()
        return _unpack(reply, Path(workdir))
    return run


def _unpack(reply: dict, workdir: Path) -> SandboxResult:
    """Write the worker's recordings where the judge reads them; the executed notebook as a result."""
    (workdir / RESULTS).mkdir(parents=True, exist_ok=True)
    for name, data in reply["recordings"].items():
        (workdir / RESULTS / _recording_name(name)).write_bytes(data)
    notebook = nbformat.reads(reply["notebook"], as_version=4) if reply["notebook"] is not None else None
    protections = (f"recorded on Dask worker {reply['worker']} in {reply['seconds']:.1f} s", *reply["protections"])
    return SandboxResult(notebook, reply["status"], reply["message"], reply["isolated"], protections, ())


def cluster_slots(address: str) -> int:
    """How many notebooks the cluster at `address` records at once (its workers' sandbox slots).

    Raises ConnectionError with a one-line reason when the scheduler cannot be reached or no worker
    offers a sandbox.
    """
    from distributed import Client
    try:
        client = Client(address, set_as_default=False, timeout=CONNECT_SECONDS)
    except (OSError, TimeoutError) as e:
        raise ConnectionError(f"cannot reach the Dask scheduler at {address} ({type(e).__name__}: {e}); "
                              f"start one with `dask scheduler` or fix --scheduler") from None
    try:
        workers = client.scheduler_info(n_workers=-1)["workers"].values()
    finally:
        client.close()
    slots = sum(int(w.get("resources", {}).get(RESOURCE, 0)) for w in workers)
    if slots == 0:
        raise ConnectionError(f"no worker of the Dask scheduler at {address} offers a grading sandbox "
                              f"({len(workers)} workers); start workers with "
                              f"`dask worker {address} --preload autograder.distributed`")
    return slots


def dask_setup(worker) -> None:
    """Preload of `dask worker`: refuse to start when this machine's sandbox is degraded, else offer
    one sandbox per worker thread (unless `--resources` already says how many)."""
    refused = sandbox_degraded()
    if refused:
        raise SandboxRefused(f"this worker refuses grading work, its sandbox is degraded: {'; '.join(refused)}")
    # Set before the worker registers, so the scheduler learns the resource with the worker itself.
    slots = worker.state.total_resources.get(RESOURCE, worker.state.nthreads)
    worker.state.total_resources[RESOURCE] = slots
    worker.state.available_resources[RESOURCE] = slots

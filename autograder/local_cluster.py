"""A Dask scheduler and workers on 127.0.0.1 as real processes: a cluster on this machine for the distributed
grading tests and `bench/distributed_throughput.py`."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from autograder.config import REPO_ROOT

DASK = str(Path(sys.executable).parent / "dask")


def start(args: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    # Own session per process: a kill reaches the nanny, its worker and nothing of the test.
    return subprocess.Popen(args, cwd=REPO_ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True, env={**os.environ, **(env or {})})


def signal_group(proc: subprocess.Popen, sig: int) -> None:
    """Send `sig` to the process group of `proc` (nothing when it is gone)."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def wait_for(condition, what: str, timeout: float = 90):
    """The first true value of `condition()`, polled; TimeoutError naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")


class Cluster:
    """A scheduler and named workers on 127.0.0.1, each a real process group."""

    def __init__(self, folder: Path, scheduler_env: dict | None = None):
        self.folder = folder
        self.procs: dict[str, subprocess.Popen] = {}
        file = folder / "scheduler.json"
        self.procs["scheduler"] = start([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                         "--scheduler-file", str(file)], folder / "scheduler.log",
                                        {"DASK_TEMPORARY_DIRECTORY": str(folder), **(scheduler_env or {})})
        self.address = wait_for(lambda: file.exists() and json.loads(file.read_text() or "{}").get("address"),
                                "the scheduler's address")
        from distributed import Client
        self.client = Client(self.address, set_as_default=False, timeout=30)

    def start_worker(self, name: str, env: dict | None = None) -> None:
        # Its files (and the sandboxes' folders) stay in the test's folder, also when the worker is killed.
        self.procs[name] = start([DASK, "worker", self.address, "--name", name, "--nthreads", "1", "--no-dashboard",
                                  "--local-directory", str(self.folder / f"{name}-files"),
                                  "--preload", "autograder.distributed"], self.folder / f"{name}.log", env)

    def workers(self) -> dict[str, dict]:
        """Registered workers by name."""
        return {w["name"]: w for w in self.client.scheduler_info(n_workers=-1)["workers"].values()}

    def wait_for_workers(self, *names: str) -> None:
        wait_for(lambda: set(names) <= set(self.workers()), f"workers {names}", timeout=120)

    def busy(self, name: str) -> bool:
        """Whether the scheduler has a task running on worker `name`."""
        address = {w["name"]: a for a, w in self.client.scheduler_info(n_workers=-1)["workers"].items()}.get(name)
        return bool(address and self.client.processing(workers=[address]).get(address))

    def close(self) -> None:
        self.client.close()
        for proc in self.procs.values():
            signal_group(proc, signal.SIGCONT)
            signal_group(proc, signal.SIGKILL)
            proc.wait()

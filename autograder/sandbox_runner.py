"""Runs inside the sandbox's namespaces: set up the mounts, then execute the notebook with nbclient.

Started by `autograder.sandbox.run_sandboxed`; not meant to be run by hand. Every import happens
before the instructor's folders are hidden.
"""
import argparse
import resource
import subprocess
import sys
from pathlib import Path

import nbformat
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

FILE_SIZE_LIMIT = 512 * 2**20  # one file the notebook writes


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True)


def isolate(bind: str, workdir: str, read_only: list[str], hide: list[str]) -> None:
    """Make the project read-only, bind the work folder, hide the rest, give /tmp its own tmpfs."""
    # Order matters: a later bind of a parent would cover the work folder's mount.
    for path in read_only:
        _mount("--bind", path, path)
        _mount("-o", "remount,bind,ro", path)
    _mount("--bind", bind, workdir)
    for path in hide:
        target = Path(path)
        if target.is_dir():
            _mount("-t", "tmpfs", "-o", "size=1m,mode=0555", "hidden", path)
        elif target.exists():
            _mount("--bind", "/dev/null", path)
    _mount("-t", "tmpfs", "-o", "size=512m", "sandbox-tmp", "/tmp")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--cell-timeout", type=int, required=True)
    parser.add_argument("--bind")
    parser.add_argument("--read-only", action="append", nargs="+", default=[])
    parser.add_argument("--hide", action="append", default=[])
    args = parser.parse_args(argv)
    if args.bind:
        isolate(args.bind, args.workdir, [p for group in args.read_only for p in group], args.hide)
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    workdir = Path(args.workdir)
    nb = nbformat.read(workdir / "submission.ipynb", as_version=4)
    km = KernelManager(kernel_name="python3", transport="ipc", ip=str(workdir / "kernel"))
    client = NotebookClient(nb, km=km, timeout=args.cell_timeout, allow_errors=True, interrupt_on_timeout=True,
                            error_on_timeout={"ename": "CellTimeoutError", "evalue": f"the cell ran longer than {args.cell_timeout} s",
                                              "traceback": [f"CellTimeoutError: the cell ran longer than {args.cell_timeout} s"]},
                            kernel_name="python3", resources={"metadata": {"path": str(workdir)}},
                            extra_arguments=["--HistoryManager.hist_file=:memory:"])
    status = 0
    try:
        client.execute()
    except DeadKernelError as e:
        print(f"kernel died: {e}", file=sys.stderr)
        status = 3
    finally:
        nbformat.write(nb, workdir / "executed.ipynb")
    return status


if __name__ == "__main__":
    sys.exit(main())

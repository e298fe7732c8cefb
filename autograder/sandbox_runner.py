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


def _hide(path: str) -> None:
    target = Path(path)
    if target.is_dir():
        _mount("-t", "tmpfs", "-o", "size=1m,mode=0555", "hidden", path)
    elif target.exists():
        _mount("--bind", "/dev/null", path)


def private_tmp(keep: Path) -> None:
    """Give the kernel an empty /tmp; when the project itself lives under /tmp, hide everything else there."""
    tmp = Path("/tmp")
    if not keep.is_relative_to(tmp):
        _mount("-t", "tmpfs", "-o", "size=512m", "sandbox-tmp", "/tmp")
        return
    # Walk down to the project, hiding every sibling on the way (other runs, other courses).
    folder = tmp
    for part in keep.relative_to(tmp).parts:
        for entry in folder.iterdir():
            if entry.name != part:
                _hide(str(entry))
        folder = folder / part


def isolate(bind: str, workdir: str, read_only: list[str], hide: list[str], project: str) -> None:
    """Make the project read-only, bind the work folder, hide the rest, make /tmp private."""
    # Order matters: a later bind of a parent would cover the work folder's mount.
    for path in read_only:
        _mount("--bind", path, path)
        _mount("-o", "remount,bind,ro", path)
    _mount("--bind", bind, workdir)
    for path in hide:
        _hide(path)
    private_tmp(Path(project))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--cell-timeout", type=int, required=True)
    parser.add_argument("--bind")
    parser.add_argument("--read-only", action="append", nargs="+", default=[])
    parser.add_argument("--hide", action="append", default=[])
    parser.add_argument("--project", help="the project root, which must stay visible")
    args = parser.parse_args(argv)
    if args.bind:
        isolate(args.bind, args.workdir, [p for group in args.read_only for p in group], args.hide, args.project)
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

"""What a sandboxed grading kernel compiles for itself: the installed modules it imports without cached bytecode.

Usage (from the repo root, after `make setup`):
    PYTHONPATH=. .venv/bin/python bench/kernel_bytecode.py

The kernel sees the venv read-only, so a module Python has not cached yet is compiled again in every kernel
(the Makefile's FIRST_IMPORTS caches what kernels import). One sandboxed kernel runs the first code cell
of every notebook and what submissions often do (raise, run past the cell's time limit, print without end),
then lists, from its own `sys.modules`, the modules under site-packages whose bytecode file is missing.
Prints the count and their names; 0 is the goal.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from autograder.config import ASSIGNMENT, REPO_ROOT
from autograder.sandbox import Limits, run_sandboxed

LIST_MISSING = """\
import importlib.util, os, sys
installed = [(name, m.__file__) for name, m in list(sys.modules.items())
             if 'site-packages' in (getattr(m, '__file__', None) or '') and m.__file__.endswith('.py')]
missing = sorted(name for name, path in installed if not os.path.exists(importlib.util.cache_from_source(path)))
print(len(installed), len(missing), ' '.join(missing))
"""
# what submissions often do: raise (a traceback), run past the cell's time limit, print without end
MISHAPS = ["1 / 0", "while True:\n    pass", "while True:\n    print('x' * 10000)"]
LIMITS = Limits(cell_timeout=5, notebook_timeout=300, output_bytes=20_000)


def first_cells() -> list[str]:
    """The first code cell of every master notebook: their imports."""
    notebooks = sorted((REPO_ROOT / "source" / ASSIGNMENT).glob("*.ipynb"))
    return [next(c.source for c in nbformat.read(p, as_version=4).cells if c.cell_type == "code") for p in notebooks]


def main() -> None:
    firsts = first_cells()
    nb = new_notebook(cells=[new_code_cell(source) for source in [*firsts, *MISHAPS, LIST_MISSING]])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    with tempfile.TemporaryDirectory() as folder:
        result = run_sandboxed(nb, Path(folder) / "run", hide=[], limits=LIMITS)
    if result.status != "ok" or result.notebook is None:
        raise SystemExit(f"the kernel did not finish: {result.status} {result.message}")
    errors = [o for c in result.notebook.cells[:len(firsts)] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    if errors:
        raise SystemExit(f"a first cell failed: {errors[0].get('ename')}: {errors[0].get('evalue')}")
    installed, missing, *names = "".join(o.get("text", "") for o in result.notebook.cells[-1].outputs).split(" ", 2)
    print(f"installed modules a grading kernel imported: {installed}; without cached bytecode (compiled in the kernel): "
          f"{missing}")
    if names and names[0].strip():
        print(names[0].strip())


if __name__ == "__main__":
    main()

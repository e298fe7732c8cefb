"""A class for the similarity report: independently written students and planted, disguised copies.

Independent students: the reference, and `catalog_<k>` students whose every exercise is the k-th
mutant of that function in autograder/golden/mutants (written separately, each a different mistake).
Planted copies: a student's solution cells passed through `disguise`, which renames every local
variable and argument, swaps neighbouring statements that do not depend on each other, moves helper
functions, and replaces the comments: what a student does to hide a copy.
"""
import ast
import importlib
import re
from pathlib import Path

from autograder.similarity import solution_cells as code_solution_cells
from autograder.golden.build import RELEASE, SOURCE, function_source, solution_cells, write_submission

CONCEPTS = ("normalization", "resizing", "tta", "mixup", "label_smoothing")
COMMENTS = ("# compute it step by step", "# my approach", "# see the lecture notes", "# careful with shapes")


def _solution_id(function: str) -> tuple[str, str] | None:
    """(notebook stem, solution grade id) of the release cell that defines `function`."""
    for nb in sorted(RELEASE.glob("*.ipynb")):
        for gid, src in solution_cells(nb).items():
            if re.search(rf"^def {function}\(", src, re.M):
                return nb.stem, gid
    return None


def implementations() -> dict[tuple[str, str], list[str]]:
    """{(notebook, solution cell): the mutants of its function as a student writes them}."""
    found: dict[tuple[str, str], list[str]] = {}
    for concept in CONCEPTS:
        module = importlib.import_module(f"autograder.golden.mutants.{concept}")
        fns = [m.fn for m in module.MUTANTS] + list(getattr(module, "RAW", {}).values())
        for fn in fns:
            fn = getattr(fn, "__wrapped__", fn)
            if getattr(fn, "__module__", None) != module.__name__:
                continue            # a wrapper made elsewhere (seeded, partial): its RAW entry is used
            target = next((m.target.split(",")[0] for m in module.MUTANTS
                           if getattr(m.fn, "__wrapped__", m.fn) is fn), None) or _raw_target(fn.__name__)
            where = _solution_id(target) if target else None
            if where:
                source = function_source(fn, target)
                if source not in found.setdefault(where, []):
                    found[where].append(source)
    return found


def _raw_target(name: str) -> str | None:
    # RAW entries of mixup and resizing, named after what they implement
    prefixes = {"lam_": "sample_lam", "box_": "rand_box", "fit_": "progressive_fit"}
    return next((target for prefix, target in prefixes.items() if name.startswith(prefix)), None)


class _Rename(ast.NodeTransformer):
    def __init__(self, names: dict[str, str]):
        self.names = names

    def visit_Name(self, node):
        node.id = self.names.get(node.id, node.id)
        return node

    def visit_arg(self, node):
        node.arg = self.names.get(node.arg, node.arg)
        return node


def _locals(tree: ast.AST) -> set[str]:
    """Names bound inside functions (arguments and assignments): what a student can rename freely."""
    names = set()
    for fn in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.Lambda))):
        names |= {a.arg for a in ast.walk(fn.args) if isinstance(a, ast.arg)}
        if isinstance(fn, ast.FunctionDef):
            names |= {n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    return names


def _uses(stmt: ast.stmt) -> tuple[set, set]:
    written = {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    read = {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return written, read


def _swap_independent(body: list[ast.stmt]) -> list[ast.stmt]:
    """Swap each pair of neighbouring assignments that neither reads nor writes what the other writes."""
    out, i = list(body), 0
    while i + 1 < len(out):
        a, b = out[i], out[i + 1]
        if isinstance(a, (ast.Assign, ast.AugAssign)) and isinstance(b, (ast.Assign, ast.AugAssign)):
            wa, ra = _uses(a)
            wb, rb = _uses(b)
            if not (wa & (rb | wb)) and not (wb & ra):
                out[i], out[i + 1] = b, a
                i += 2
                continue
        i += 1
    return out


def disguise(code: str) -> str:
    """The same program with local names renamed, independent lines reordered, helpers moved and other
    comments."""
    tree = ast.parse(code)
    tree = _Rename({name: f"my_{name.strip('_')}" for name in _locals(tree)}).visit(tree)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.For, ast.If, ast.With)):
            node.body = _swap_independent(node.body)
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    if len(defs) > 1:           # helpers after the function that uses them: fine at module level
        rest = [n for n in tree.body if not isinstance(n, ast.FunctionDef)]
        tree.body = [n for n in rest if isinstance(n, (ast.Import, ast.ImportFrom))] + defs[::-1] + \
            [n for n in rest if not isinstance(n, (ast.Import, ast.ImportFrom))]
    lines = ast.unparse(ast.fix_missing_locations(tree)).splitlines()
    return "\n".join(f"{line}  {COMMENTS[i % len(COMMENTS)]}" if i % 3 == 0 and line.strip() else line
                     for i, line in enumerate(lines)) + "\n"


def as_fills(cells: dict[tuple[str, str], str]) -> dict[str, dict[str, str]]:
    """{(notebook, cell): code} as `write_submission`'s fills, {notebook: {cell: code}}."""
    fills: dict[str, dict[str, str]] = {}
    for (notebook, gid), code in cells.items():
        fills.setdefault(notebook, {})[gid] = code
    return fills


def reference_cells() -> dict[tuple[str, str], str]:
    """The master notebooks' code solutions, without nbgrader's markers."""
    cells = {}
    for nb in sorted(SOURCE.glob("*.ipynb")):
        for gid, src in code_solution_cells(nb).items():
            cells[(nb.stem, gid)] = "\n".join(line for line in src.splitlines() if "### BEGIN SOLUTION" not in line
                                             and "### END SOLUTION" not in line)
    return cells


def write_similarity_class(dest: Path, catalog: int = 4) -> dict[str, str]:
    """Write the class; returns {planted copy: the student it copies}."""
    students = {"reference": reference_cells()}
    impls = implementations()
    for k in range(catalog):
        students[f"catalog_{k}"] = {where: sources[k] for where, sources in impls.items() if len(sources) > k}
    planted = {"copy_of_reference": "reference", "copy_of_catalog_1": "catalog_1"}
    for copy, original in planted.items():
        students[copy] = {where: disguise(code) for where, code in students[original].items()}
    for name, cells in students.items():
        write_submission(dest / name, as_fills(cells))
    return planted

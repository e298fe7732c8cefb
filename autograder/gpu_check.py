"""`make gpu-check` (or `python -m autograder.gpu_check` where no venv exists): the workbook on a CUDA GPU.

On a CUDA machine it
1. runs the exercises' tests on CUDA tensors (tests/test_cuda.py: float32/64 and float16/bfloat16) and
   the reference tests;
2. grades the golden class twice, kernels on the CPU and on the GPU (each kernel gets one device,
   round-robin; the recorder moves the grader's inputs to `cuda:0`), and compares every cell's score: the
   only allowed difference is the mutant whose result leaves the input's device, which the GPU run catches;
3. runs every master notebook at full budget with its kernel on the GPU, timing it against the stored
   CPU run (cell `execution` metadata) and reading the kernel's peak GPU memory.
Everything it prints also goes to `--log`. On a CPU-only machine it says so and succeeds.
"""
import argparse
import csv
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

from autograder.config import ASSIGNMENT, REPO_ROOT

# Cells that may score differently on CUDA than on the CPU: {student: {grade id}}.
DEVICE_ONLY_LOSSES = {"mutant_tta_on_cpu": {"five_crop_tta_values"}}
PEAK_MEMORY = "import torch as _t; print('GPU-CHECK peak bytes', _t.cuda.max_memory_allocated() if _t.cuda.is_available() else -1)"


class Log:
    """Print and append to a log file."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file = path.open("w")

    def __call__(self, *parts):
        line = " ".join(str(p) for p in parts)
        print(line, flush=True)
        self.file.write(line + "\n")
        self.file.flush()


def run_notebooks(log: Log, names: list[str] | None) -> bool:
    import nbformat
    from nbclient import NotebookClient

    from autograder.time_limits import cell_seconds

    ok = True
    env_fast = os.environ.pop("WORKBOOK_FAST", None)  # full budget: the kernel inherits this environment
    log("\n## 3. notebooks at full budget, kernel on CUDA")
    log(f"{'notebook':32} {'CPU s (stored)':>14} {'CUDA s':>8} {'speed-up':>8} {'peak GPU MiB':>12}  status")
    try:
        folder = REPO_ROOT / "source" / ASSIGNMENT
        for path in [folder / f"{n}.ipynb" for n in names] if names else sorted(folder.glob("*.ipynb")):
            nb = nbformat.read(path, as_version=4)
            cpu = [cell_seconds(c) for c in nb.cells]
            for cell in nb.cells:  # a cell the run never reaches must not show the stored CPU time
                cell.metadata.pop("execution", None)
            nb.cells.append(nbformat.v4.new_code_cell(PEAK_MEMORY))
            start = time.perf_counter()
            try:
                NotebookClient(nb, timeout=300, kernel_name="python3",
                               resources={"metadata": {"path": str(path.parent)}}).execute()
                status = "ok"
            except Exception as e:
                failed = next((i for i, c in enumerate(nb.cells)
                               if any(o.get("output_type") == "error" for o in c.get("outputs", []))), None)
                where = f" in cell {failed}: {nb.cells[failed].source.strip().splitlines()[0][:80]}" if failed is not None else ""
                status, ok = f"FAILED{where}: {type(e).__name__}: {str(e).strip().splitlines()[-1][:300]}", False
            seconds = time.perf_counter() - start
            peak = next((o.get("text", "") for o in nb.cells[-1].get("outputs", []) if "GPU-CHECK" in o.get("text", "")), "")
            peak_mib = f"{int(peak.split()[-1]) / 2**20:.0f}" if peak else "?"
            cpu_total = sum(t for t in cpu if t)
            log(f"{path.stem:32} {cpu_total:14.1f} {seconds:8.1f} {cpu_total / seconds:7.1f}x {peak_mib:>12}  {status}")
            # The slowest cells of the stored CPU run, side by side with CUDA (notebook 07: the training runs).
            slow = sorted((i for i, t in enumerate(cpu) if t), key=lambda i: -cpu[i])[:3]
            for i in slow:
                gpu = cell_seconds(nb.cells[i])
                first = nb.cells[i].source.strip().splitlines()[0][:60] if nb.cells[i].source.strip() else ""
                log(f"    cell {i:3d}: CPU {cpu[i]:6.1f} s, CUDA {gpu if gpu is None else round(gpu, 1)} s  | {first}")
    finally:
        if env_fast is not None:
            os.environ["WORKBOOK_FAST"] = env_fast
    return ok


def run_tests(log: Log) -> bool:
    log("\n## 1. exercise tests on CUDA tensors (tests/test_cuda.py) and the CUDA cases of the reference tests")
    tests = ["tests/test_cuda.py", *sorted(str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "tests").glob("test_reference_*.py"))]
    start = time.perf_counter()
    # The reference tests' own CUDA cases (test_cuda_matches_cpu, ...); their CPU cases run in `make test`.
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE", *tests,
                           "-k", "test_cuda.py or cuda or gpu"],
                          cwd=REPO_ROOT, capture_output=True, text=True)
    lines = proc.stdout.strip().splitlines()
    for line in lines:
        if line.startswith(("FAILED", "ERROR")) or line == lines[-1]:
            log("   ", line)
    log(f"    ({time.perf_counter() - start:.1f} s, exit {proc.returncode})")
    return proc.returncode == 0


def _grade(log: Log, root: Path, label: str, jobs: int, env: dict) -> dict[str, dict[str, float]]:
    grading = root / f"grading-{label}"
    start = time.perf_counter()
    from autograder.sandbox import isolation_available
    unsafe = [] if isolation_available() else ["--unsafe-no-sandbox"]  # named in the table it logs
    proc = subprocess.run([sys.executable, "-m", "autograder.cli", "grade", str(root / "class"), "--grading-root",
                           str(grading), "--jobs", str(jobs), "--no-feedback", *unsafe],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    log(f"\n### golden class, kernels on {label}: {seconds:.1f} s (exit {proc.returncode}; 1 means some submission was not fully graded)")
    log(proc.stdout.strip())
    if proc.stderr.strip():
        log("grader's log (last lines):\n" + "\n".join(proc.stderr.strip().splitlines()[-15:]))
    _log_reasons(log, grading / "autograded" / "reference")
    with (grading / "grades.csv").open() as f:
        rows = list(csv.DictReader(f))
    scores = {}
    for row in rows:
        scores[row["student"]] = {k: float(v) for k, v in row.items()
                                  if k not in ("student", "status", "total", "max_total", "notes", "seconds")
                                  and v not in ("", None) and _is_number(v)}
    return scores


def _log_reasons(log: Log, folder: Path, most: int = 4) -> None:
    """The first verdicts of graded cells that did not pass (what the judge said), for a failing run."""
    import nbformat

    shown = 0
    for path in sorted(folder.rglob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            text = "".join(str(o.get("text", "")) + str(o.get("evalue", "")) for o in cell.get("outputs", []))
            if cell.get("metadata", {}).get("nbgrader", {}).get("grade") and "passed" not in text and text and shown < most:
                log(f"    {path.stem} {cell.metadata.nbgrader.get('grade_id')}: {text.strip()[:400]}")
                shown += 1


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def sandbox_sees_cuda(log: Log) -> bool:
    """One tiny notebook through the sandbox: does a kernel start there, and does it see the GPU?"""
    import tempfile

    import nbformat

    from autograder.sandbox import isolation_available, run_sandboxed

    log("\n## 2a. one sandboxed kernel")
    if not isolation_available():
        log("    bubblewrap cannot run here: kernels run UNSANDBOXED (--unsafe-no-sandbox); carry the bubblewrap "
            "package to check CUDA inside the sandbox")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import torch, workbook; print('cuda', torch.cuda.is_available(), torch.cuda.device_count())")])
    with tempfile.TemporaryDirectory(dir=REPO_ROOT / ".grading") as work:
        result = run_sandboxed(nb, Path(work), hide=[], env={"CUDA_VISIBLE_DEVICES": "0"}, unsafe=not isolation_available())
    outputs = [] if result.notebook is None else result.notebook.cells[0].get("outputs", [])
    log(f"    status {result.status} {result.message[:600]}")
    log(f"    degraded: {'; '.join(result.degraded) or 'nothing'}")
    log(f"    output: {[o.get('text') or o.get('evalue') for o in outputs]}")
    return result.status == "ok"


def grade_golden(log: Log, jobs: int) -> bool:
    from autograder.golden.build import write_golden_class

    log("\n## 2. the golden class graded with kernels on the CPU, then on CUDA")
    root = REPO_ROOT / ".grading" / "gpu-check"
    shutil.rmtree(root, ignore_errors=True)
    write_golden_class(root / "class")
    cpu = _grade(log, root, "CPU", jobs, {**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    gpu = _grade(log, root, "CUDA", jobs, dict(os.environ))
    ok = True
    log("\n### cells that scored differently on CUDA than on the CPU")
    for student in sorted(set(cpu) | set(gpu)):
        if student not in cpu or student not in gpu:
            log(f"    {student}: missing from the {'CPU' if student not in cpu else 'CUDA'} grades")
            ok = False
            continue
        lost = {cell for cell in cpu[student] if gpu[student].get(cell, 0.0) < cpu[student][cell]}
        gained = {cell for cell in gpu[student] if gpu[student][cell] > cpu[student].get(cell, 0.0)}
        expected = DEVICE_ONLY_LOSSES.get(student, set())
        if lost or gained or expected:
            verdict = "as expected" if lost == expected and not gained else "UNEXPECTED"
            ok &= verdict == "as expected"
            log(f"    {student}: lost on CUDA {sorted(lost)}, gained {sorted(gained)}, expected to lose {sorted(expected)}: {verdict}")
    reference = gpu.get("reference", {})
    log(f"    reference on CUDA: {sum(reference.values())} points over {len(reference)} graded cells")
    return ok


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="gpu-check", description=__doc__.splitlines()[0])
    parser.add_argument("--log", type=Path, default=REPO_ROOT / ".grading" / "gpu-check.log")
    parser.add_argument("--jobs", type=int, default=min(12, os.cpu_count() or 1), help="notebooks graded at once")
    parser.add_argument("--notebooks", nargs="*", help="notebook stems to run (default: all)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["notebooks", "tests", "grading"])
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("gpu-check: no CUDA device on this machine (torch.cuda.is_available() is False); nothing to check")
        return 0
    log = Log(args.log)
    names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    log(f"gpu-check: {len(names)} CUDA device(s): {', '.join(names)}; torch {torch.__version__}, "
        f"CUDA {torch.version.cuda}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    ok = True
    # Quickest first: a run cut short by a time limit still logs the earlier steps' figures.
    steps = (("tests", lambda: run_tests(log)), ("grading", lambda: sandbox_sees_cuda(log) & grade_golden(log, args.jobs)),
             ("notebooks", lambda: run_notebooks(log, args.notebooks)))
    for name, step in steps:
        if name in args.skip:
            continue
        try:
            step_ok = step()
        except Exception as e:  # one broken step must not hide the others' figures
            log(f"{name}: FAILED with {type(e).__name__}: {e}")
            step_ok = False
        ok &= step_ok
    log(f"\ngpu-check: {'all checks passed' if ok else 'SOME CHECKS FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

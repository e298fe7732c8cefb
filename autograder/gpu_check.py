"""`make gpu-check`: on a CUDA machine, run the workbook's notebooks and grade the golden class on the GPU,
printing times; on a CPU-only machine, say so and succeed.

Grading on the GPU: each sandboxed kernel gets one device (CUDA_VISIBLE_DEVICES, round-robin over the
visible devices), the recorder moves the grader's inputs to `cuda:0` inside the kernel, and the judge
rejects outputs that are not on the input's device.
"""
import shutil
import sys
import time
from pathlib import Path

import torch

from autograder.config import ASSIGNMENT, REPO_ROOT


def main() -> int:
    if not torch.cuda.is_available():
        print("gpu-check: no CUDA device on this machine (torch.cuda.is_available() is False); nothing to check")
        return 0
    import nbformat
    from nbclient import NotebookClient

    from autograder.grading import format_table, grade_class
    from tests.golden import write_golden_class

    names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    print(f"gpu-check: {len(names)} CUDA device(s): {', '.join(names)}")
    failed = False
    for path in sorted((REPO_ROOT / "source" / ASSIGNMENT).glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        start = time.perf_counter()
        try:
            NotebookClient(nb, timeout=600, kernel_name="python3",
                           resources={"metadata": {"path": str(path.parent)}}).execute()
            status = "ok"
        except Exception as e:
            status, failed = f"FAILED: {type(e).__name__}: {str(e).splitlines()[0][:200]}", True
        print(f"notebook {path.name}: {time.perf_counter() - start:.1f} s {status}")
    root = REPO_ROOT / ".grading" / "gpu-check"
    shutil.rmtree(root, ignore_errors=True)
    write_golden_class(root / "class")
    start = time.perf_counter()
    results = grade_class(root / "class", root / "grading", jobs=max(2, len(names)), feedback=False)
    elapsed = time.perf_counter() - start
    print(format_table(results))
    print(f"graded {len(results)} golden submissions on the GPU in {elapsed:.1f} s ({elapsed / len(results):.1f} s each)")
    failed |= any(r.status != "graded" for r in results)
    reference = next(r for r in results if r.student == "reference")
    if reference.total != reference.max_total:
        print(f"gpu-check: the reference scored {reference.total} / {reference.max_total} on the GPU")
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

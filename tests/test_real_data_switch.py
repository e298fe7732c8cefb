"""Notebooks 02 and 04 run under WORKBOOK_DATA=160 on an imagenette-layout copy with real WordNet ids.

The copy is the embedded "small" set under Imagenette's class folders (tests/real_layout.py), given to
the kernels through IMAGENETTE_PATH; the run uses the reduced budget (WORKBOOK_FAST=1).  The checks:
every cell runs, the kernels worked on a sample of that copy (their `data:` line says so, and class
names come out as Imagenette's words), and nothing the notebooks ran changed the repository.
"""
import subprocess
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.real_layout import imagenette_copy
from workbook.data import get_imagenette

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "source" / "sizing_and_tta"


def repository_state() -> tuple[str, ...]:
    """`git status --porcelain` (changed tracked files, new untracked ones) and `git diff` (their changes)."""
    return tuple(subprocess.run(["git", *command], cwd=ROOT, capture_output=True, text=True, check=True).stdout
                 for command in (["status", "--porcelain"], ["diff", "--binary"]))


@pytest.fixture(scope="module")
def real_copy(tmp_path_factory):
    return imagenette_copy(get_imagenette("synthetic"), tmp_path_factory.mktemp("real") / "imagenette2-160")


def stdout_of(nb) -> str:
    return "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                   for out in cell.get("outputs", []) if out.get("output_type") == "stream")


@pytest.mark.parametrize("notebook", ["02_normalization.ipynb", "04_test_time_augmentation.ipynb"])
def test_notebook_runs_on_real_layout_data(notebook, real_copy, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBOOK_DATA", "160")
    monkeypatch.setenv("IMAGENETTE_PATH", str(real_copy))
    monkeypatch.setenv("WORKBOOK_FAST", "1")
    monkeypatch.setenv("WORKBOOK_CACHE", str(tmp_path / "cache"))
    nb = nbformat.read(NOTEBOOKS / notebook, as_version=4)
    if notebook.startswith("04"):     # the class names the five-crop figure's captions were made from
        nb.cells.append(nbformat.v4.new_code_cell('print("captions:", " | ".join(short))'))
    before = repository_state()
    # A cell that fails raises CellExecutionError, naming the cell and the error.
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert repository_state() == before, "running the notebook changed files in the repository"

    printed = stdout_of(nb)
    assert (f"data: small subset (seed 0) of the Imagenette-layout folder {real_copy.resolve()}: "
            "1,500 train / 500 val images") in printed
    assert "embedded synthetic set" not in printed
    if notebook.startswith("04"):
        assert ("captions: tench | English springer | cassette player | chain saw | church | French horn | "
                "garbage truck | gas pump | golf ball | parachute") in printed

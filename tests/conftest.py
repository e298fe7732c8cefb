"""Shared fixtures; keeps every cache inside the repository."""
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
for var, sub in (("FASTAI_HOME", "fastai"), ("TORCH_HOME", "torch"), ("MPLCONFIGDIR", "matplotlib")):
    os.environ.setdefault(var, str(ROOT / ".cache" / sub))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT

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


def pytest_collection_modifyitems(config, items):
    """Files with slow tests first, each file's tests in their own order: under pytest-xdist (make test, with
    --no-loadscope-reorder) the long files start at once and the short ones fill the workers' last minutes."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)

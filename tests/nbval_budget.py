"""pytest plugin (`-p tests.nbval_budget`) for the notebooks under nbval in the tests' own session.

`make test` collects the tests and the notebooks in one pytest-xdist session, so the notebooks share the
workers with the tests instead of running in a second session after the last test. Only the notebooks'
kernels get the reduced training budget (WORKBOOK_FAST=1): nbval starts a notebook's kernel while its first
cell is set up, and that kernel keeps the environment it started with; the tests keep theirs. The notebooks'
cells count as slow (they start a kernel and train), so they run after the slow test files and before the
quick ones (tests/conftest.py orders the files).
"""
import os
from unittest import mock

import pytest
from nbval.plugin import IPyNbCell

FAST = {"WORKBOOK_FAST": "1"}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Mark the notebooks' cells slow, before tests/conftest.py orders the files by that marker."""
    for item in items:
        if isinstance(item, IPyNbCell):
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    """Set up a notebook cell (and so start its notebook's kernel) with the reduced budget in the environment."""
    if not isinstance(item, IPyNbCell):  # a test's own fixtures may set variables during its setup: keep them
        yield
        return
    with mock.patch.dict(os.environ, FAST):
        yield

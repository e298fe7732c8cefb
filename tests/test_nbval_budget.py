"""The nbval plugin of make test: a notebook's kernel starts with the reduced budget, the tests beside it
keep their own environment (what their fixtures set during setup included), and the notebook's cells are slow."""
import nbformat
import pytest

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.slow

NOTEBOOK_CELL = "import os\nprint(os.environ.get('WORKBOOK_FAST'))"
TESTS = '''
import os
import pytest

@pytest.fixture()
def data_path(monkeypatch):
    monkeypatch.setenv("IMAGENETTE_PATH", "/data/imagenette2-160")

def test_fixture_variables_survive_setup(data_path):
    assert os.environ["IMAGENETTE_PATH"] == "/data/imagenette2-160"

def test_tests_run_without_the_reduced_budget():
    assert "WORKBOOK_FAST" not in os.environ
'''


def test_only_the_notebook_kernel_gets_the_reduced_budget(pytester, monkeypatch, repo_root):
    monkeypatch.delenv("WORKBOOK_FAST", raising=False)
    monkeypatch.setenv("PYTHONPATH", str(repo_root))     # the plugin is imported as tests.nbval_budget
    cell = nbformat.v4.new_code_cell(NOTEBOOK_CELL, execution_count=1,
                                     outputs=[nbformat.v4.new_output("stream", name="stdout", text="1\n")])
    nbformat.write(nbformat.v4.new_notebook(cells=[cell], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}}),
                   pytester.path / "budget.ipynb")
    pytester.makepyfile(test_beside=TESTS)
    pytester.makeini("[pytest]\nmarkers =\n    slow: starts a kernel")
    result = pytester.runpytest_subprocess("-p", "tests.nbval_budget", "--nbval", "-p", "no:cacheprovider",
                                           "budget.ipynb", "test_beside.py")
    result.assert_outcomes(passed=3, warnings=0)     # the cell's stored output "1" is what the kernel must print
    quick = pytester.runpytest_subprocess("-p", "tests.nbval_budget", "--nbval", "-p", "no:cacheprovider",
                                          "-m", "not slow", "budget.ipynb", "test_beside.py")
    quick.assert_outcomes(passed=2, deselected=1)    # the notebook's cell counts as slow

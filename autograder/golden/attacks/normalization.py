"""Attacks on the normalization notebook's grading: each fills solution cells with hostile code.

`FILLS` maps a solution grade id to the code the attack puts there; `MAX_EARNED` is the most points
the attack may earn (0: none of its cells may pass).
"""
IMPORT_REFERENCE = {
    "name": "imports the reference solutions",
    "fills": {
        "channel_stats_solution": "from autograder.reference.normalization import channel_stats",
        "normalize_solution": "from autograder.reference.normalization import normalize",
        "streaming_stats_solution": (
            "# load the reference by file path, next to the student package\n"
            "import importlib.util, pathlib, workbook\n"
            "path = pathlib.Path(workbook.__file__).resolve().parents[1] / 'autograder' / 'reference' / 'normalization.py'\n"
            "spec = importlib.util.spec_from_file_location('stolen_reference', path)\n"
            "module = importlib.util.module_from_spec(spec)\n"
            "spec.loader.exec_module(module)\n"
            "streaming_channel_stats = module.streaming_channel_stats"),
    },
}

PATCH_CHECKS = {
    "name": "patches assert helpers, torch.allclose and the visible checks to always pass",
    "fills": {
        "channel_stats_solution": (
            "import torch, builtins, numpy.testing, torch.testing\n"
            "import workbook.checks as checks\n"
            "torch.allclose = lambda *a, **k: True\n"
            "torch.equal = lambda *a, **k: True\n"
            "torch.testing.assert_close = lambda *a, **k: None\n"
            "numpy.testing.assert_allclose = lambda *a, **k: None\n"
            "checks.expect_close = checks.expect_raises = checks.expect_equal = lambda *a, **k: None\n"
            "globals().update(expect_close=checks.expect_close, expect_raises=checks.expect_raises)\n"
            "class AlwaysEqual(float):\n"
            "    def __eq__(self, other): return True\n"
            "    def __ne__(self, other): return False\n"
            "def channel_stats(x):\n"
            "    return AlwaysEqual(0), AlwaysEqual(0)"),
        "normalize_solution": "def normalize(x, mean, std):\n    return x",
        "streaming_stats_solution": "def streaming_channel_stats(batches):\n    return torch.zeros(3), torch.ones(3)",
    },
}

ATTACKS = {"import_reference": IMPORT_REFERENCE, "patch_checks": PATCH_CHECKS}

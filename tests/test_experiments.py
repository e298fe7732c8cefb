"""Stored experiments: the statistics against scipy, the verdict rule, and drift between the declared
configurations, the stored results and what the notebooks show."""
import json
import math
import re
import subprocess
import sys

import nbformat
import pytest
from scipy import stats

from workbook import experiments
from workbook.experiments import EXPERIMENTS, RESULTS_DIR, Experiment, _run, load, report_markdown
from workbook.seed_statistics import Estimate, mean_se, paired_difference, paired_over_images, verdict

ROOT = RESULTS_DIR.parents[1]
NOTEBOOKS = sorted((ROOT / "source" / "sizing_and_tta").glob("*.ipynb"))


# ---------------------------------------------------------------------------------------------- statistics

def test_mean_se_matches_numpy_and_scipy():
    values = [0.652, 0.618, 0.700, 0.641]
    estimate = mean_se(values)
    assert estimate.mean == pytest.approx(sum(values) / 4)
    assert estimate.se == pytest.approx(stats.sem(values))        # scipy: ddof=1
    assert estimate.n == 4


def test_paired_difference_agrees_with_scipy_paired_t():
    a, b = [0.70, 0.66, 0.69], [0.64, 0.65, 0.61]
    difference = paired_difference(a, b)
    t = stats.ttest_rel(a, b).statistic
    assert difference.mean / difference.se == pytest.approx(t)


def test_paired_over_images_averages_seeds_per_image_first():
    a = ["1100", "1110"]      # two seeds, four images
    b = ["0100", "0100"]
    estimate = paired_over_images(a, b)
    per_image = [1.0, 0.0, 0.5, 0.0]
    assert estimate.mean == pytest.approx(sum(per_image) / 4)
    assert estimate.se == pytest.approx(stats.sem(per_image))
    assert estimate.n == 4


def test_one_value_has_no_standard_error_and_no_verdict():
    assert math.isnan(mean_se([0.5]).se)
    assert "no verdict" in verdict("A", "B", paired_difference([0.6], [0.5]))


@pytest.mark.parametrize("bad, error", [([], ValueError), ([0.1, float("nan")], ValueError), (["x"], TypeError)])
def test_bad_values_are_refused_with_a_message(bad, error):
    with pytest.raises(error, match="values"):
        mean_se(bad)


def test_paired_values_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="same length"):
        paired_difference([0.1, 0.2], [0.1])


@pytest.mark.parametrize("mean, se, expected", [
    (0.030, 0.010, "A beats B by 0.030 ± 0.010"),
    (-0.030, 0.010, "B beats A by 0.030 ± 0.010"),
    (0.019, 0.010, "within noise"),
    (0.020, 0.010, "A beats B"),          # the rule: |d| >= 2 SE counts
])
def test_verdict_rule_is_two_standard_errors(mean, se, expected):
    assert expected in verdict("A", "B", Estimate(mean, se, 3))


def test_equal_values_in_every_seed_are_no_difference():
    assert "no difference" in verdict("A", "B", paired_difference([1.0, 1.0, 1.0], [1.0, 1.0, 1.0]))


def test_verdict_when_lower_is_better_or_no_judgement():
    assert "B beats A" in verdict("A", "B", Estimate(0.05, 0.01, 3), metric="ECE", higher_is_better=False)
    assert "A is higher than B" in verdict("A", "B", Estimate(0.05, 0.01, 3), metric="p", higher_is_better=None)


# ---------------------------------------------------------------------------------------------- declarations

def test_every_arm_is_a_complete_configuration_and_comparisons_name_arms():
    for experiment in EXPERIMENTS.values():
        for arm, config in experiment.arms.items():
            assert set(config) == set(experiments.DEFAULT_RUN), (experiment.name, arm)
        for a, b in experiment.comparisons:
            assert {a, b} <= set(experiment.arms), (experiment.name, a, b)
        assert len(experiment.seeds) >= 3, f"{experiment.name}: error bars need at least 3 seeds"


def test_an_unknown_setting_is_refused():
    with pytest.raises(ValueError, match="unknown run settings"):
        _run(epochs=5)


def test_config_hash_changes_with_any_setting():
    experiment = EXPERIMENTS["cutout"]
    changed = Experiment(experiment.name, experiment.notebook, experiment.question,
                         {**experiment.arms, "Cutout": {**experiment.arms["Cutout"], "cutout": 0.4}},
                         experiment.comparisons)
    assert changed.config_hash() != experiment.config_hash()


def test_settings_added_later_enter_the_configuration_only_when_set():
    experiment = EXPERIMENTS["cutout"]
    assert all(set(config) == set(experiments.DEFAULT_RUN) - set(experiments.ADDED_LATER)
               for config in experiment.config()["arms"].values())
    with_tta = Experiment(experiment.name, experiment.notebook, experiment.question,
                          {**experiment.arms, "Cutout": {**experiment.arms["Cutout"], "tta": True}},
                          experiment.comparisons)
    assert with_tta.config()["arms"]["Cutout"]["tta"] is True
    assert with_tta.config_hash() != experiment.config_hash()


def test_budget_plot_reads_each_arms_epochs_and_refuses_unknown_arms():
    import matplotlib
    matplotlib.use("Agg")
    from workbook.plots import budget_comparison
    stored = load("mixup_budget")
    ax = budget_comparison(stored, {"no Mixup": ["no Mixup, 2 epochs", "no Mixup, 6 epochs"]})
    line = ax.get_lines()[0]
    assert list(line.get_xdata()) == [2, 6]
    expected = [mean_se(experiments.arm_values(stored, arm, "accuracy")).mean for arm in ("no Mixup, 2 epochs",
                                                                                         "no Mixup, 6 epochs")]
    assert list(line.get_ydata()) == pytest.approx(expected)
    with pytest.raises(ValueError, match="not in the stored experiment"):
        budget_comparison(stored, {"x": ["no such arm"]})


# ---------------------------------------------------------------------------------------------- drift

@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_stored_results_match_the_declared_configuration(name):
    experiment = EXPERIMENTS[name]
    stored = load(name)
    assert stored["config"] == json.loads(json.dumps(experiment.config())), (
        f"{name}: the stored configuration differs from the declared one; "
        f"re-run `python -m workbook.experiments {name}`")
    assert stored["config_hash"] == experiment.config_hash()
    for arm in experiment.arms:
        assert sorted(stored["runs"][arm]) == sorted(str(s) for s in experiment.seeds), (name, arm)
    for field in ("data", "code", "machine", "wall_seconds"):
        assert stored[field], (name, field)
    assert {"git_commit", "git_dirty", "code_sha256"} <= set(stored["code"])
    assert {"n_train", "n_val", "folder"} <= set(stored["data"][0])


def test_no_stored_file_without_a_declaration():
    orphans = {p.stem for p in RESULTS_DIR.glob("*.json")} - set(EXPERIMENTS)
    assert not orphans, f"results without a declared experiment: {sorted(orphans)}"


def _report_cells(path):
    """(cell index, experiment name, rendered markdown stored in the notebook) for each report cell."""
    found = []
    for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
        if cell.cell_type != "code":
            continue
        for name in re.findall(r"report_markdown\(\"(\w+)\"\)", cell.source):
            shown = [o["data"]["text/markdown"] for o in cell.outputs if "text/markdown" in o.get("data", {})]
            found.append((index, name, shown))
    return found


REPORT_CELLS = [(path, *cell) for path in NOTEBOOKS for cell in _report_cells(path)]


def test_every_experiment_is_shown_in_its_notebook():
    shown = {(path.stem, name) for path, _, name, _ in REPORT_CELLS}
    missing = {(e.notebook, e.name) for e in EXPERIMENTS.values()} - shown
    assert not missing, f"experiments no notebook renders: {sorted(missing)}"


@pytest.mark.parametrize("path, index, name, shown", REPORT_CELLS,
                         ids=[f"{p.stem}-{n}" for p, _, n, _ in REPORT_CELLS])
def test_notebook_shows_what_the_store_gives(path, index, name, shown):
    assert shown == [report_markdown(name)], (
        f"{path.name} cell {index}: the rendered results of {name!r} differ from the stored ones; "
        f"re-execute the notebook")


# Numbers written by hand into the prose: a three-decimal figure in [0, 1] in a markdown cell of a notebook
# that shows stored experiments must be one the store renders. Constants of the text (not results) are listed.
PROSE_CONSTANTS = {"0.485", "0.456", "0.406", "0.229", "0.224", "0.225", "0.875", "0.125"}


@pytest.mark.parametrize("path", sorted({p for p, *_ in REPORT_CELLS}), ids=lambda p: p.stem)
def test_prose_numbers_are_the_stored_ones(path):
    rendered = "\n".join(report_markdown(name) for p, _, name, _ in REPORT_CELLS if p == path)
    allowed = set(re.findall(r"\b0\.\d{3}\b", rendered)) | PROSE_CONSTANTS
    cells = nbformat.read(path, as_version=4).cells
    stray = [(i, number) for i, cell in enumerate(cells) if cell.cell_type == "markdown"
             for number in re.findall(r"(?<![\d.])0\.\d{3}(?!\d)", cell.source) if number not in allowed]
    assert not stray, f"{path.name}: numbers in the prose that the stored results do not give: {stray}"


# ---------------------------------------------------------------------------------------------- the command

def test_list_names_every_experiment_and_its_state():
    out = subprocess.run([sys.executable, "-m", "workbook.experiments", "--list"], capture_output=True, text=True,
                         check=True).stdout
    for name in EXPERIMENTS:
        assert re.search(rf"^{name}\s.*stored", out, re.M), out


def test_unknown_experiment_gives_one_line():
    result = subprocess.run([sys.executable, "-m", "workbook.experiments", "nope"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "unknown experiment 'nope'" in result.stderr and "Traceback" not in result.stderr


def test_a_tiny_experiment_runs_stores_and_summarises(tmp_path, monkeypatch):
    tiny = Experiment("tiny", "none", "two arms on the tiny set",
                      {"plain": _run(data="synthetic-tiny", sizes=[16], bs=16, tta=True),
                       "cutout": _run(data="synthetic-tiny", sizes=[16], bs=16, cutout=0.5)},
                      (("cutout", "plain"),), seeds=(0, 1),
                      metrics=(("accuracy", "validation accuracy", True), ("tta_accuracy", "with TTA", True)),
                      within_arm=(("tta_accuracy", "accuracy", "with TTA"),))
    monkeypatch.setitem(EXPERIMENTS, "tiny", tiny)
    stored = experiments.run_experiment("tiny", folder=tmp_path, log=lambda line: None)
    on_disk = json.loads((tmp_path / "tiny.json").read_text())
    assert on_disk["config_hash"] == tiny.config_hash() and on_disk["seeds"] == [0, 1]
    run = on_disk["runs"]["plain"]["0"]
    assert len(run["correct"]) == on_disk["data"][0]["n_val"] == 40
    assert run["accuracy"] == pytest.approx(run["correct"].count("1") / 40)
    assert len(run["epoch_accuracy"]) == 1 and sum(run["top_p_histogram"]) == 40
    assert stored["machine"]["torch_threads"] == 1
    assert len(run["tta_correct"]) == 40 and run["tta_accuracy"] == pytest.approx(run["tta_correct"].count("1") / 40)
    assert run["tta_gain"] == pytest.approx(run["tta_accuracy"] - run["accuracy"])
    assert "tta_accuracy" not in on_disk["runs"]["cutout"]["0"]
    report = report_markdown("tiny", tmp_path)
    assert "| plain |" in report and "n=2" in report and "Rule:" in report
    runs = [on_disk["runs"]["plain"][str(seed)] for seed in (0, 1)]
    expected = verdict("plain with TTA", "plain without", paired_difference(
        [r["tta_accuracy"] for r in runs], [r["accuracy"] for r in runs]), metric="validation accuracy")
    assert f"- {expected}" in report, report
    assert "cutout with TTA" not in report          # the arm without TTA has no within-arm line


def test_cutout_zeroes_one_square_per_image_and_leaves_the_input():
    import torch
    from types import SimpleNamespace
    callback = experiments.Cutout(0.5, seed=0)
    x = torch.ones(4, 3, 8, 8)
    callback.learn = SimpleNamespace(xb=(x,), yb=(torch.zeros(4),))
    callback.before_batch()
    out = callback.learn.xb[0]
    assert torch.equal(x, torch.ones(4, 3, 8, 8))
    zeroed = (out == 0).all(dim=1)                      # the same pixels in every channel
    for image in zeroed:
        rows, cols = image.any(dim=1).sum().item(), image.any(dim=0).sum().item()
        assert 1 <= rows <= 4 and 1 <= cols <= 4 and image.sum() == rows * cols   # one rectangle, clipped at the edge


def test_a_training_subset_keeps_every_class_and_its_augmentations():
    from workbook.data import get_dls, get_imagenette
    dls = get_dls(get_imagenette("synthetic-tiny"), 16, bs=8)
    subset = experiments._training_subset(dls.train, 40)
    assert len(subset.dataset) == 40 and subset.split_idx == 0      # 0: the training transforms run
    assert sorted({item.parent.name for item in subset.items}) == sorted(dls.vocab)
    assert subset.shuffle and subset.bs == 8

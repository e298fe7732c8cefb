"""The long-training script ``python -m workbook.train``: arguments, errors, --help and one tiny real run."""
import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbook.train import (RESULT_COLUMNS, TrainConfig, main, parse_config, parse_schedule, regularisation)

ROOT = Path(__file__).resolve().parents[1]
PROG = "python -m workbook.train"


def run_script(*args, env_extra=None):
    """Run the script in a fresh interpreter; returns the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "workbook.train", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


# ------------------------------------------------------------------ the command line, out of process
@pytest.mark.slow
def test_help_reads_well():
    done = run_script("--help")
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert text.startswith(f"usage: {PROG}")
    for expected in ("fastai's Imagenette", "--schedule SIZE:EPOCHS", "--mixup ALPHA", "--cutmix ALPHA",
                     "--label-smoothing EPS", "--tta", "--device {auto,cpu,cuda}", "examples:",
                     "--precision {auto,fp32,fp16,bf16}", "$WORKBOOK_DATA", "on CUDA: by default 8 DataLoader",
                     "xresnet50 is the full-size",
                     "python -m workbook.train --schedule 32:6,64:4", "WORKBOOK_FAST=1", "results.csv"):
        assert expected in text, f"--help lacks {expected!r}"


@pytest.mark.slow
def test_bad_argument_exits_2_with_a_one_line_message():
    done = run_script("--epochs", "-3")
    assert done.returncode == 2
    assert done.stdout == ""
    last = done.stderr.strip().splitlines()[-1]
    assert last == f"{PROG}: error: --epochs must be >= 1, got -3"


# ------------------------------------------------------------------ parse_config, in process
@pytest.mark.parametrize("argv, message", [
    (["--epochs", "0"], "--epochs must be >= 1, got 0"),
    (["--size", "8"], "--size must be >= 16 px, got 8"),
    (["--label-smoothing", "1.0"], "--label-smoothing EPS must be in [0, 1), got 1.0"),
    (["--label-smoothing", "-0.1"], "--label-smoothing EPS must be in [0, 1), got -0.1"),
    (["--label-smoothing", "nan"], "--label-smoothing EPS must be in [0, 1), got nan"),
    (["--mixup", "0"], "--mixup ALPHA must be > 0"),
    (["--mixup", "-0.4"], "--mixup ALPHA must be > 0"),
    (["--cutmix", "0"], "--cutmix ALPHA must be > 0"),
    (["--mixup", "0.4", "--cutmix", "1.0"], "argument --cutmix: not allowed with argument --mixup"),
    (["--data", "imagewoof"], "unknown data set 'imagewoof'; choose one of: synthetic,"),
    (["--schedule", "32-3"], "malformed schedule stage '32-3' in '32-3'"),
    (["--schedule", "32:3,64"], "malformed schedule stage '64'"),
    (["--schedule", "32:3,"], "malformed schedule stage ''"),
    (["--schedule", "32:0"], "the epoch count must be >= 1"),
    (["--schedule", "8:2"], "the size must be >= 16 px"),
    (["--schedule", "32:2", "--epochs", "3"], "--schedule replaces --size and --epochs"),
    (["--bs", "0"], "--bs must be >= 1, got 0"),
    (["--lr=-1e-3"], "--lr must be a positive number, got -0.001"),
    (["--seed", "-1"], "--seed must be >= 0, got -1"),
    (["--epochs", "two"], "argument --epochs: invalid int value: 'two'"),
    (["--device", "tpu"], "argument --device: invalid choice: 'tpu'"),
    (["--device", "cuda"], "--device cuda was requested but CUDA is not available here"),
    (["--fp16"], "--fp16 needs --device cuda"),
    (["--precision", "bf16"], "--precision bf16 needs --device cuda"),
    (["--workers", "-1"], "--workers must be >= 0, got -1"),
    (["--data", "synthetic-large", "--variant", "small"], "--data synthetic-large is the large variant"),
    (["--variant", "all"], "--variant all is for real Imagenette"),
])
def test_bad_arguments_exit_2_naming_the_problem(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_config(argv, cuda_available=False, fast=False)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith(f"usage: {PROG}")
    assert err[-1].startswith(f"{PROG}: error: ")
    assert message in err[-1], err[-1]


def test_defaults(monkeypatch):
    monkeypatch.delenv("WORKBOOK_FAST", raising=False)
    config = parse_config([], cuda_available=False)
    assert config.data == "synthetic"
    assert config.stages == ((64, 5),) and config.epochs == 5
    assert (config.bs, config.lr, config.arch, config.seed) == (64, 1e-2, "small_xresnet", 0)
    assert config.mixup is None and config.cutmix is None and config.label_smoothing == 0.0
    assert not config.tta and not config.fast and config.device == "cpu"
    assert regularisation(config) == ([], None)


def test_a_full_command_line():
    config = parse_config(["--data", "imagenette-synthetic-large", "--schedule", "32:3, 64:2", "--mixup", "0.2",
                           "--label-smoothing", "0.1", "--tta", "--bs", "32", "--lr", "3e-3", "--seed", "7",
                           "--out", "somewhere", "--arch", "xresnet18"], cuda_available=False, fast=False)
    assert config == TrainConfig(data="synthetic-large", stages=((32, 3), (64, 2)), bs=32, lr=3e-3, arch="xresnet18",
                                 mixup=0.2, label_smoothing=0.1, tta=True, seed=7, out=Path("somewhere"))
    assert config.epochs == 5
    assert config.describe() == ("synthetic-large, xresnet18, 3 epochs at 32 px, 2 epochs at 64 px, bs=32, "
                                 "lr=0.003, cpu, seed=7; Mixup alpha=0.2; label smoothing eps=0.1; TTA")


def test_regularisation_uses_fastai_callbacks_and_loss():
    from fastai.callback.mixup import CutMix, MixUp
    from fastai.losses import LabelSmoothingCrossEntropy

    cbs, loss = regularisation(parse_config(["--mixup", "0.4", "--label-smoothing", "0.1"], cuda_available=False))
    assert len(cbs) == 1 and type(cbs[0]) is MixUp
    assert float(cbs[0].distrib.concentration1) == pytest.approx(0.4)
    assert isinstance(loss, LabelSmoothingCrossEntropy) and loss.eps == 0.1
    cbs, loss = regularisation(parse_config(["--cutmix", "1.0"], cuda_available=False))
    assert len(cbs) == 1 and type(cbs[0]) is CutMix and loss is None


@pytest.mark.parametrize("requested, available, resolved", [
    ("auto", False, "cpu"), ("auto", True, "cuda"), ("cpu", True, "cpu"), ("cuda", True, "cuda")])
def test_device_resolution(requested, available, resolved):
    assert parse_config(["--device", requested], cuda_available=available).device == resolved


def test_fast_mode_from_the_environment_or_the_flag(monkeypatch):
    monkeypatch.setenv("WORKBOOK_FAST", "1")
    assert parse_config([], cuda_available=False).fast
    monkeypatch.setenv("WORKBOOK_FAST", "0")
    assert not parse_config([], cuda_available=False).fast
    assert parse_config(["--fast"], cuda_available=False).fast


def test_parse_schedule():
    assert parse_schedule("32:3,64:2") == ((32, 3), (64, 2))
    assert parse_schedule(" 128 : 80 ") == ((128, 80),)
    for bad in ("", "32", "32:3:1", "a:b", "32:3;64:2", "-32:3"):
        with pytest.raises(ValueError, match="malformed schedule stage"):
            parse_schedule(bad)
    with pytest.raises(TypeError):
        parse_schedule(32)


def test_missing_real_data_returns_1_with_the_reason(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("IMAGENETTE_PATH", str(tmp_path / "no-such-folder"))
    assert main(["--data", "160", "--device", "cpu", "--quiet", "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{PROG}: error: ") and "no-such-folder" in err


# ------------------------------------------------------------------ a tiny real run
def read_results(folder):
    with open(folder / "results.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        return reader.fieldnames, list(reader)


@pytest.mark.slow
def test_tiny_run_writes_csv_summary_and_plot(tmp_path, capsys):
    out = tmp_path / "run"
    # --bs 16: five training batches, so the WORKBOOK_FAST budget really cuts the epoch short (after
    # 20 % of them), the case where fastai's Recorder leaves out the training loss.
    status = main(["--data", "synthetic-tiny", "--schedule", "32:2,48:1", "--bs", "16", "--mixup", "0.4",
                   "--label-smoothing", "0.1", "--tta", "--fast", "--quiet", "--device", "cpu", "--out", str(out)])
    assert status == 0
    printed = capsys.readouterr().out
    assert "final accuracy" in printed and "with TTA" in printed

    columns, rows = read_results(out)
    assert tuple(columns) == RESULT_COLUMNS
    # WORKBOOK_FAST budget: one (short) epoch per stage, then the final row
    assert [r["epoch"] for r in rows] == ["1", "2", "final"]
    assert [r["size"] for r in rows] == ["32", "48", "48"]
    for r in rows:
        for name in ("train_loss", "valid_loss", "time_s"):
            assert np.isfinite(float(r[name])) and float(r[name]) > 0, (name, r)
        assert 0.0 <= float(r["accuracy"]) <= 1.0
    assert rows[0]["tta_accuracy"] == rows[1]["tta_accuracy"] == ""
    assert 0.0 <= float(rows[-1]["tta_accuracy"]) <= 1.0
    assert rows[-1]["accuracy"] == rows[1]["accuracy"]
    assert float(rows[-1]["time_s"]) >= float(rows[0]["time_s"]) + float(rows[1]["time_s"])

    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["mixup"] == 0.4 and summary["config"]["stages"] == [[32, 2], [48, 1]]
    assert summary["data"]["name"] == "synthetic-tiny" and (summary["data"]["n_train"], summary["data"]["n_valid"]) == (80, 40)
    assert Path(summary["data"]["folder"]).name == "imagenette-synthetic-tiny"

    # the final model on all 40 validation images (not the fast budget's short validation set)
    with np.load(out / "predictions.npz") as saved:
        probs, targets, files, vocab = (saved[k] for k in ("probs", "targets", "files", "vocab"))
    assert probs.shape == (40, 10) and np.allclose(probs.sum(axis=1), 1, atol=1e-5) and (probs >= 0).all()
    assert [Path(f).parts[:2] for f in files] == [("val", vocab[t]) for t in targets]
    assert sorted(Path(f).name for f in files) == sorted(p.name for p in (Path(summary["data"]["folder"]) / "val").rglob("*.JPEG"))
    assert summary["data"]["description"] == "embedded synthetic set (not Imagenette), variant tiny: 80 train / 40 val images"
    assert summary["final_accuracy"] == pytest.approx(float(rows[-1]["accuracy"]), abs=1e-6)
    assert len(summary["epochs"]) == 2

    with Image.open(out / "curves.png") as png:
        assert png.format == "PNG" and png.size == (900, 360)
        pixels = np.asarray(png.convert("RGB"))
    assert pixels.std() > 10, "the plot is blank"
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50, "the plot has almost no colours: nothing drawn?"


@pytest.mark.slow
def test_same_seed_same_run(tmp_path):
    def losses(folder):
        assert main(["--data", "synthetic-tiny", "--size", "32", "--epochs", "1", "--cutmix", "1.0", "--fast",
                     "--quiet", "--device", "cpu", "--seed", "3", "--out", str(folder)]) == 0
        return [(r["train_loss"], r["valid_loss"], r["accuracy"]) for r in read_results(folder)[1]]

    assert losses(tmp_path / "a") == losses(tmp_path / "b")


# ------------------------------------------------------------------ CUDA defaults, the data switch, bad images
@pytest.mark.parametrize("argv, bf16, cpus, precision, workers", [
    (["--device", "cuda"], True, 16, "bf16", 8),
    (["--device", "cuda"], False, 16, "fp16", 8),
    (["--device", "cuda"], True, 2, "bf16", 2),
    (["--device", "cuda", "--precision", "fp32", "--workers", "3"], True, 16, "fp32", 3),
    (["--device", "cuda", "--fp16"], True, 16, "fp16", 8),
    (["--device", "cpu"], True, 16, "fp32", 0),
])
def test_cuda_defaults_keep_the_gpu_fed(argv, bf16, cpus, precision, workers):
    config = parse_config(argv, cuda_available=True, fast=False, bf16_supported=bf16, cpu_count=cpus)
    assert (config.precision, config.workers) == (precision, workers)


def test_the_data_switch_is_the_default_data_set(monkeypatch, capsys):
    monkeypatch.setenv("WORKBOOK_DATA", "320")
    assert parse_config([], cuda_available=False).data == "320"
    assert parse_config(["--data", "synthetic"], cuda_available=False).data == "synthetic"
    config = parse_config(["--variant", "small", "--size", "32", "--epochs", "1"], cuda_available=False, fast=False)
    assert (config.data, config.variant) == ("320", "small")
    assert config.describe().startswith("320 (small), small_xresnet, 1 epoch at 32 px")
    monkeypatch.setenv("WORKBOOK_DATA", "imagewoof")
    with pytest.raises(SystemExit):
        parse_config([], cuda_available=False)
    assert "WORKBOOK_DATA='imagewoof' is not a data set" in capsys.readouterr().err.splitlines()[-1]


@pytest.fixture()
def corrupt_copy(tmp_path, monkeypatch):
    """IMAGENETTE_PATH: a real-layout copy of the tiny set whose last validation image is cut short."""
    from tests.real_layout import imagenette_copy
    from workbook.synthetic import make_synthetic_imagenette

    copy = imagenette_copy(make_synthetic_imagenette(tmp_path / "synthetic", variant="tiny"), tmp_path / "copy")
    bad = sorted((copy / "val").rglob("*.JPEG"))[-1]
    bad.write_bytes(bad.read_bytes()[:300])
    monkeypatch.setenv("IMAGENETTE_PATH", str(copy))
    return bad


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["0", "1"])
def test_a_corrupt_image_is_one_line_naming_the_file(corrupt_copy, tmp_path, capsys, workers):
    status = main(["--data", "160", "--size", "32", "--epochs", "1", "--bs", "16", "--workers", workers,
                   "--device", "cpu", "--quiet", "--out", str(tmp_path / "out")])
    assert status == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"{PROG}: error: Cannot read image file {corrupt_copy}:")
    assert "delete it or replace it" in err[0]


@pytest.mark.slow
def test_the_plot_title_names_the_data_folder_and_its_image_counts():
    from workbook.plots import curves_figure
    from workbook.train import EpochRow, RunResult

    config = parse_config(["--data", "160", "--size", "32", "--epochs", "1"], cuda_available=False, fast=False)
    result = RunResult(config=config, rows=[EpochRow(1, 32, 1.0, 1.1, 0.5, 2.0)], final_accuracy=0.5,
                       tta_accuracy=None, total_time_s=2.0,
                       data={"name": "160", "folder": "/data/imagenette2-160", "description": "...",
                             "n_train": 9469, "n_valid": 3925})
    title = curves_figure(result)._suptitle.get_text()
    assert title.splitlines()[-1] == "data: /data/imagenette2-160 (9,469 train / 3,925 val images)"

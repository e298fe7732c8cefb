"""The TTA reference against torchvision and a hand-written loop; the probe model; the device check."""
import inspect

import pytest
import torch
from fastai.learner import Learner
from torch import nn
from torch.testing import assert_close
from torchvision.transforms.v2.functional import five_crop as tv_five_crop

from autograder.rubric import REGISTRY, seed_for
from autograder.rubric.tta import PROBE_TARGET
from autograder.judge import judge_recording, record_in_process
from autograder.reference.tta import five_crop, five_crop_tta
from autograder.golden.mutants import tta as mutants
from workbook.probes import ProbeModelError, build_probe_model, probe_weights, run_probe
from workbook.recording import call_case

SEEDS = [seed_for("tests", student, "x") for student in ("ada", "grace", "linus")]
PROBE_CHECKS = [c for c in REGISTRY.values() if c.target == PROBE_TARGET]


def images(shape, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    if dtype == torch.uint8:
        return torch.randint(0, 256, shape, generator=g, dtype=dtype)
    return torch.rand(shape, generator=g, dtype=torch.float64).to(dtype)


# Every centre-offset remainder and parity: (H - h) from 0 to 9, rectangles, crops as wide as the image.
def _fits(size, h_img, w_img):
    h, w = (size, size) if isinstance(size, int) else (size[0], size[-1])
    return h <= h_img and w <= w_img


SIZES = [((h_img, w_img), size) for h_img, w_img in ((9, 9), (10, 13), (12, 8), (7, 16), (1, 5), (64, 80))
         for size in (1, 3, 4, (5, 2), (1, 5), (7, 8), [6, 3], (6,)) if _fits(size, h_img, w_img)]


@pytest.mark.parametrize("image_size, size", SIZES, ids=str)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.uint8], ids=str)
def test_five_crop_equals_torchvision(image_size, size, dtype):
    x = images((3, 2, *image_size), dtype=dtype)
    before = x.clone()
    got = five_crop(x, size)
    assert_close(got, torch.stack(tv_five_crop(x, size)), rtol=0, atol=0)
    assert got.dtype == dtype and got.device == x.device
    assert torch.equal(x, before)


@pytest.mark.parametrize("offset", range(10))
def test_centre_offset_rounds_ties_to_even_like_torchvision(offset):
    x = torch.arange(offset + 1.0).reshape(1, 1, 1, -1)
    centre = five_crop(x, (1, 1))[4]
    assert centre.item() == round(offset / 2) == torch.stack(tv_five_crop(x, [1, 1]))[4].item()


@pytest.mark.parametrize("x, size, error", [
    (torch.zeros(1, 3, 6, 8), (7, 4), ValueError),
    (torch.zeros(2, 3, 8, 6), 7, ValueError),
    (torch.zeros(3, 8, 8), 4, ValueError),
    (torch.zeros(1, 1, 3, 8, 8), 4, ValueError),
    (torch.zeros(1, 3, 8, 8), 0, ValueError),
    (torch.zeros(1, 3, 8, 8), (4, -1), ValueError),
    (torch.zeros(1, 3, 8, 8), 2.5, TypeError),
    (torch.zeros(1, 3, 8, 8), True, TypeError),
    (torch.zeros(1, 3, 8, 8), (1, 2, 3), TypeError),
    ([[0.0]], 1, TypeError),
])
def test_five_crop_rejects_bad_arguments(x, size, error):
    with pytest.raises(error):
        five_crop(x, size)


def test_torchvision_also_refuses_a_crop_larger_than_the_image():
    with pytest.raises(ValueError):
        tv_five_crop(torch.zeros(1, 3, 6, 8), [7, 4])


def small_net(dropout=0.5):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.AdaptiveAvgPool2d(3),
                         nn.Flatten(), nn.Dropout(dropout), nn.Linear(54, 4))


def loop_tta(model, x, size):
    """Five-crop TTA written as plainly as possible, with torchvision's crops."""
    model.eval()
    with torch.no_grad():
        probs = [model(crop).softmax(dim=1) for crop in tv_five_crop(x, size)]
    return sum(probs) / len(probs)


@pytest.mark.parametrize("shape, size", [((4, 3, 12, 12), 8), ((2, 3, 11, 14), (8, 9)), ((1, 3, 8, 8), 8)])
def test_five_crop_tta_equals_a_loop_over_torchvision_crops(shape, size):
    model = small_net()
    x = images(shape, seed=1)
    got = five_crop_tta(model, x, size)
    want = loop_tta(small_net(), x, size)
    assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert_close(got.sum(dim=1), torch.ones(shape[0]))
    assert not got.requires_grad


def test_five_crop_tta_differs_from_the_training_mode_answer():
    x = images((4, 3, 12, 12), seed=2)
    model = small_net().train()
    model[1].running_mean.fill_(0.5)
    got = five_crop_tta(model, x, 8)
    with torch.no_grad():
        in_training_mode = model(torch.stack(tv_five_crop(x, 8)).flatten(0, 1)).softmax(1).reshape(5, 4, -1).mean(0)
    assert (got - in_training_mode).abs().max() > 1e-2


def test_five_crop_tta_leaves_batchnorm_statistics_alone():
    model = small_net().train()
    bn = model[1]
    before = bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone()
    five_crop_tta(model, images((4, 3, 12, 12), seed=2), 8)
    assert all(torch.equal(b, a) for b, a in zip(before, (bn.running_mean, bn.running_var, bn.num_batches_tracked)))


@pytest.mark.parametrize("start", ["train", "eval", "mixed"])
def test_five_crop_tta_restores_every_module_flag(start):
    model = small_net()
    model.train(start == "train")
    if start == "mixed":
        model.train()
        model[1].eval()  # a frozen BatchNorm inside a model in training mode
    flags = [m.training for m in model.modules()]
    five_crop_tta(model, images((2, 3, 10, 10)), 8)
    assert [m.training for m in model.modules()] == flags


def test_five_crop_tta_restores_flags_when_the_model_raises():
    model = small_net().train()
    with pytest.raises(RuntimeError):
        five_crop_tta(model, images((2, 5, 10, 10)), 8)  # 5 channels for a 3-channel convolution
    assert all(m.training for m in model.modules())


def test_five_crop_tta_rejects_a_model_that_is_not_a_module():
    with pytest.raises(TypeError):
        five_crop_tta(lambda x: x, images((1, 3, 8, 8)), 4)


def test_fastai_tta_defaults_are_those_the_notebook_states():
    params = inspect.signature(Learner.tta).parameters
    assert {k: params[k].default for k in ("ds_idx", "dl", "n", "item_tfms", "batch_tfms", "beta", "use_max")} == \
        {"ds_idx": 1, "dl": None, "n": 4, "item_tfms": None, "batch_tfms": None, "beta": 0.25, "use_max": False}
    source = inspect.getsource(Learner.tta)
    assert "set_split_idx(0)" in source and "torch.lerp(aug_preds, preds, beta)" in source


# ---- the probe model -------------------------------------------------------------------------

def test_probe_is_rebuilt_identically_and_eval_differs_from_training():
    weights = probe_weights(torch.Generator().manual_seed(0), in_channels=3, n_classes=4)
    x = images((6, 3, 8, 8))
    a, b = build_probe_model(weights), build_probe_model(weights)
    assert a.training and b.training
    a.eval(), b.eval()
    assert_close(a(x), b(x), rtol=0, atol=0)
    torch.manual_seed(0)
    assert (a.train()(x) - b(x)).abs().max() > 0.1
    assert all(p.requires_grad for p in build_probe_model(weights).parameters())


def test_probe_follows_dtype_and_mode():
    weights = probe_weights(torch.Generator().manual_seed(0), dtype=torch.float64, training=False)
    model = build_probe_model(weights)
    assert not model.training and next(model.parameters()).dtype == torch.float64


def test_run_probe_reports_output_grad_and_flags_and_only_catches_the_probe_failure():
    g = torch.Generator().manual_seed(0)
    x = images((2, 3, 10, 10))
    report = run_probe(five_crop_tta, probe_weights(g), x, 8)
    assert report["requires_grad"] is False and report["training"] == [True] * 6
    assert report["output"].shape == (2, 5)
    failed = run_probe(five_crop_tta, probe_weights(g, fail=True), x, 8)
    assert failed["output"] is None and failed["training"] == [True] * 6
    with pytest.raises(ProbeModelError):
        build_probe_model(probe_weights(g, fail=True))(x)
    with pytest.raises(NotImplementedError):
        run_probe(lambda *a: (_ for _ in ()).throw(NotImplementedError()), probe_weights(g, fail=True), x, 8)


# ---- the checks of five_crop_tta, which tests/test_mutants.py cannot run with the bare reference ----

@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("check", PROBE_CHECKS, ids=lambda c: c.grade_id)
def test_reference_passes_the_probe_checks(check, seed):
    verdict = record_in_process(check, mutants.on_probe(five_crop_tta), seed)
    assert verdict.passed, verdict.message


def _recording(check, fn, seed, device_label):
    """Record `fn` on the CPU, then label every returned tensor as if it had come back on `device_label`."""
    cases = check.make_cases(torch.Generator().manual_seed(seed))
    results = [call_case(fn, {"args": list(c.args), "kwargs": {}}, "cpu") for c in cases]
    for result in results:
        output = result["value"]["output"]
        if isinstance(output, dict) and device_label is not None:
            output["device"] = device_label
    return cases, {"results": results}


def test_results_moved_to_the_cpu_are_refused_when_grading_on_cuda():
    """The judge compares the recorded device with the input's (faked here: no GPU needed)."""
    check = REGISTRY["five_crop_tta_values"]
    # A device-following function reports the input's device; the mutant's .cpu() reports "cpu".
    cases, follows = _recording(check, mutants.on_probe(five_crop_tta), SEEDS[0], "cuda:0")
    assert judge_recording(check, cases, follows, device="cuda:0").passed
    cases, on_cpu = _recording(check, mutants.on_probe(mutants.tta_results_on_cpu), SEEDS[0], None)
    verdict = judge_recording(check, cases, on_cpu, device="cuda:0")
    assert not verdict.passed and "input's device cuda:0" in verdict.message


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_results_moved_to_the_cpu_are_caught_on_a_real_gpu():
    check = REGISTRY["five_crop_tta_values"]
    assert record_in_process(check, mutants.on_probe(five_crop_tta), SEEDS[0], device="cuda:0").passed
    assert not record_in_process(check, mutants.on_probe(mutants.tta_results_on_cpu), SEEDS[0], device="cuda:0").passed


@pytest.mark.parametrize("grade_id, right, wrong", [
    ("fastai_tta_passes", [5], [4, 1, "5", 5.5, None]),
    ("tta_speed", ["slower", " Slower "], ["faster", "the same", 0, None]),
])
def test_value_answers_of_the_notebook(grade_id, right, wrong):
    check = REGISTRY[grade_id]
    assert all(record_in_process(check, answer, 0).passed for answer in right)
    assert not any(record_in_process(check, answer, 0).passed for answer in wrong)


# ---- the notebook's figure helpers -----------------------------------------------------------

@pytest.mark.parametrize("height, width, size", [(72, 72, 64), (10, 13, 7), (12, 8, (5, 3)), (4, 8, (3, 3))])
def test_crop_boxes_are_the_five_crops(height, width, size):
    from workbook.plots import crop_boxes
    x = images((1, 1, height, width))
    for (top, left, h, w), crop in zip(crop_boxes(height, width, size), five_crop(x, size)):
        assert torch.equal(x[..., top:top + h, left:left + w], crop)


def test_five_crops_figure():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from workbook.plots import five_crops_figure
    fig = five_crops_figure(images((3, 12, 12)), 8, titles=list("abcde"))
    assert len(fig.axes) == 6
    assert [ax.get_title() for ax in fig.axes[1:]] == [f"{name}\n{t}" for name, t in zip(
        ("top-left", "top-right", "bottom-left", "bottom-right", "centre"), "abcde")]
    plt.close(fig)
    with pytest.raises(ValueError):
        five_crops_figure(images((3, 12, 12)), 8, titles=["only one"])

"""The exercises and the judge on a CUDA device (skipped without one; `make gpu-check` runs them).

Inputs made on the GPU in float32/float64 and, where the exercise accepts any floating dtype, float16
and bfloat16; each result is compared with the reference run on the CPU in float64, and must keep the
input's dtype and device.
"""
import importlib
import multiprocessing as mp
import pkgutil
from concurrent.futures import ProcessPoolExecutor

import pytest
import torch
from torch.testing import assert_close

import autograder.reference
import autograder.golden.mutants
from autograder.rubric import REGISTRY, seed_for
from autograder.judge import record_in_process
from autograder.reference import label_smoothing, mixup, normalization, tta
from autograder.golden.mutants import tta as tta_mutants
from workbook.probes import build_probe_model, probe_weights

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
CUDA = "cuda:0"
SEED = seed_for("tests", "ada", "x")
# Tolerances of one result against float64, per dtype: about ten units in the last place of the result.
TOL = {torch.float64: (1e-10, 1e-12), torch.float32: (1e-4, 1e-5), torch.float16: (1e-2, 1e-2),
       torch.bfloat16: (5e-2, 5e-2)}
ANY_FLOAT = [torch.float32, torch.float64, torch.float16, torch.bfloat16]


def _modules(package):
    return [importlib.import_module(f"{package.__name__}.{m.name}") for m in pkgutil.iter_modules(package.__path__)]


REFERENCES = {name: getattr(m, name) for m in _modules(autograder.reference) for name in m.__all__}
MUTANTS = [mutant for m in _modules(autograder.golden.mutants) for mutant in m.MUTANTS]
# The one mutant that is right on the CPU and wrong on a GPU: its result leaves the input's device.
ON_CUDA_ALSO_BREAKS = {"moves the result to the CPU (caught on CUDA only)": {"five_crop_tta_values"}}


@pytest.mark.parametrize("check", [c for c in REGISTRY.values() if c.target in REFERENCES], ids=lambda c: c.grade_id)
def test_reference_passes_every_check_on_cuda(check):
    verdict = record_in_process(check, REFERENCES[check.target], SEED, device=CUDA)
    assert verdict.passed, verdict.message


def test_the_cpu_move_mutant_is_caught_on_cuda_only():
    check = REGISTRY["five_crop_tta_values"]
    mover = tta_mutants.on_probe(tta_mutants.tta_results_on_cpu)
    assert record_in_process(check, mover, SEED, device="cpu").passed
    verdict = record_in_process(check, mover, SEED, device=CUDA)
    assert not verdict.passed and "device" in verdict.message


def _rand(shape, dtype, seed=0, device=CUDA):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(device, dtype)


def _same(got, want64, dtype):
    assert got.dtype == dtype and got.device.type == "cuda"
    rtol, atol = TOL[dtype]
    assert_close(got.cpu().double(), want64.double(), rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype", ANY_FLOAT, ids=str)
def test_normalization_on_cuda(dtype):
    x = _rand((4, 3, 9, 7), dtype)
    mean, std = normalization.channel_stats(x)
    mean64, std64 = normalization.channel_stats(x.cpu().double())
    _same(mean, mean64, dtype)
    _same(std, std64, dtype)
    _same(normalization.normalize(x, mean, std), normalization.normalize(x.cpu().double(), mean64, std64), dtype)


@pytest.mark.parametrize("dtype", ANY_FLOAT, ids=str)
def test_mixup_and_cutmix_on_cuda(dtype):
    n, k = 6, 5
    x, y = _rand((n, 3, 8, 8), dtype), torch.arange(n, device=CUDA) % k
    lam, perm = _rand((n,), dtype, seed=1), torch.randperm(n, generator=torch.Generator().manual_seed(2)).to(CUDA)
    for got, want in zip(mixup.mixup(x, y, lam, perm, k), mixup.mixup(x.cpu().double(), y.cpu(), lam.cpu().double(), perm.cpu(), k)):
        _same(got, want, dtype)
    for got, want in zip(mixup.cutmix(x, y, 0.5, perm, (1, 2, 5, 6), k),
                         mixup.cutmix(x.cpu().double(), y.cpu(), 0.5, perm.cpu(), (1, 2, 5, 6), k)):
        _same(got, want, dtype)
    logits = _rand((n, k), dtype, seed=3) * 4
    for reduction in ("mean", "sum", "none"):
        _same(mixup.mixup_loss(logits, y, lam, perm, reduction),
              mixup.mixup_loss(logits.cpu().double(), y.cpu(), lam.cpu().double(), perm.cpu(), reduction), dtype)


@pytest.mark.parametrize("dtype", ANY_FLOAT, ids=str)
def test_label_smoothing_on_cuda(dtype):
    y = torch.tensor([0, 3, 1, 4, 2, 3], device=CUDA)
    _same(label_smoothing.smooth_targets(y, 5, 0.1, dtype=dtype),
          label_smoothing.smooth_targets(y.cpu(), 5, 0.1, dtype=torch.float64), dtype)
    logits = _rand((6, 5), dtype, seed=4) * 6
    for eps in (0.0, 0.1):
        for reduction in ("mean", "sum", "none"):
            _same(label_smoothing.label_smoothing_ce(logits, y, eps, reduction),
                  label_smoothing.label_smoothing_ce(logits.cpu().double(), y.cpu(), eps, reduction), dtype)


@pytest.mark.parametrize("dtype", ANY_FLOAT + [torch.uint8], ids=str)
def test_five_crop_on_cuda(dtype):
    x = (_rand((2, 3, 11, 13), torch.float64) * 255).to(dtype)
    got = tta.five_crop(x, (6, 7))
    assert got.dtype == dtype and got.device.type == "cuda"
    assert torch.equal(got.cpu(), tta.five_crop(x.cpu(), (6, 7)))


@pytest.mark.parametrize("dtype", ANY_FLOAT, ids=str)
def test_five_crop_tta_on_cuda(dtype):
    weights = probe_weights(torch.Generator().manual_seed(0), in_channels=3, n_classes=4, dtype=torch.float64)
    x64 = _rand((3, 3, 10, 10), torch.float64, seed=5, device="cpu")
    want = tta.five_crop_tta(build_probe_model(weights), x64, 8)
    model = build_probe_model(weights).to(CUDA, dtype)
    _same(tta.five_crop_tta(model, x64.to(CUDA, dtype), 8), want, dtype)


def _fails_on_cuda(index: int) -> set[str]:
    """The checks mutant `index` fails on CUDA. Run in a process of its own: a device-side assert (an
    out-of-range index in a mutant without argument checks) ends the CUDA context of the whole process."""
    mutant = MUTANTS[index]
    checks = [c for c in REGISTRY.values() if c.target == mutant.target]
    return {c.grade_id for c in checks if not record_in_process(c, mutant.fn, SEED, device=CUDA).passed}


@pytest.fixture(scope="module")
def cuda_failures() -> list[set[str]]:
    with ProcessPoolExecutor(8, mp_context=mp.get_context("spawn"), max_tasks_per_child=1) as pool:
        return list(pool.map(_fails_on_cuda, range(len(MUTANTS))))


@pytest.mark.parametrize("index", range(len(MUTANTS)), ids=lambda i: f"{MUTANTS[i].target}: {MUTANTS[i].name}")
def test_mutant_loses_exactly_its_checks_on_cuda(index, cuda_failures):
    mutant = MUTANTS[index]
    assert cuda_failures[index] == set(mutant.breaks) | ON_CUDA_ALSO_BREAKS.get(mutant.name, set())

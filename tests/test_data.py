"""Tests of workbook.data and the modules behind it: the synthetic set (workbook.synthetic), the cache
(workbook.cache), the real-Imagenette path (workbook.download), image opening, DataLoaders."""
from __future__ import annotations

import csv
import functools
import http.server
import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from fastai.torch_core import no_random
from PIL import Image

from workbook import cache, data, download, synthetic
from workbook.cache import cache_dir
from workbook.data import (CLASS_NAMES, IMAGENET_STATS, CorruptImageError, find_corrupt_images, get_dls,
                           get_imagenette, image_folder_stats, open_rgb)
from workbook.synthetic import make_synthetic_imagenette, render_synthetic_image, synthetic_name

REPO_ROOT = Path(__file__).resolve().parents[1]


def file_bytes(root: Path) -> dict[str, bytes]:
    """{relative posix path: bytes} of every file under root."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def image_bytes(root: Path, split: str) -> list[bytes]:
    return sorted(p.read_bytes() for p in (root / split).rglob("*.JPEG"))


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> Path:
    return make_synthetic_imagenette(tmp_path_factory.mktemp("synthetic"), variant="tiny")


# --------------------------------------------------------------------------------------------
# Cache location
# --------------------------------------------------------------------------------------------
def test_cache_dir_follows_env_var(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBOOK_CACHE", str(tmp_path / "elsewhere"))
    assert cache_dir() == (tmp_path / "elsewhere").resolve()
    monkeypatch.delenv("WORKBOOK_CACHE")
    assert cache_dir() == REPO_ROOT / ".cache"


def test_synthetic_default_location_is_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBOOK_CACHE", str(tmp_path))
    root = get_imagenette("synthetic-tiny")
    assert root == tmp_path / "data" / "imagenette-synthetic-tiny"
    assert (root / "train").is_dir() and (root / "val").is_dir()


# --------------------------------------------------------------------------------------------
# Synthetic data set: layout, determinism, phenomena
# --------------------------------------------------------------------------------------------
def test_tiny_layout_and_counts(tiny):
    assert tiny.name == "imagenette-synthetic-tiny"
    for split, per_class in (("train", 8), ("val", 4)):
        assert sorted(p.name for p in (tiny / split).iterdir()) == list(CLASS_NAMES)
        for name in CLASS_NAMES:
            files = list((tiny / split / name).iterdir())
            assert len(files) == per_class
            assert all(f.suffix == ".JPEG" for f in files)
    assert "SYNTHETIC" in (tiny / "README.txt").read_text()


def test_generation_is_byte_identical(tmp_path, tiny):
    again = make_synthetic_imagenette(tmp_path, variant="tiny")
    assert again != tiny
    assert file_bytes(again) == file_bytes(tiny)


def test_seed_changes_images(tmp_path, tiny):
    other = make_synthetic_imagenette(tmp_path, variant="tiny", seed=1)
    assert other.name == "imagenette-synthetic-tiny-seed1"
    assert set(image_bytes(other, "train")).isdisjoint(image_bytes(tiny, "train"))


def test_images_vary_in_size_and_aspect_ratio(tiny):
    sizes = [Image.open(p).size for p in sorted(tiny.rglob("*.JPEG"))]
    assert all(60 <= w <= 140 and 60 <= h <= 140 for w, h in sizes)
    assert len(set(sizes)) > 0.8 * len(sizes)
    ratios = [w / h for w, h in sizes]
    assert min(ratios) < 1 / 1.4 and max(ratios) > 1.4


def test_channel_stats_are_far_from_zero_one_and_imagenet(tiny):
    mean, std = image_folder_stats(tiny / "train")
    assert np.allclose(mean, (0.60, 0.36, 0.21), atol=0.04)
    assert all(0.04 < s < 0.12 for s in std)
    imagenet_mean, imagenet_std = IMAGENET_STATS
    assert np.linalg.norm(np.subtract(mean, imagenet_mean)) > 0.2
    assert all(s < 0.6 * t for s, t in zip(std, imagenet_std))


def _high_frequency_energy(pixels: np.ndarray, short_side: int) -> float:
    """Mean absolute Laplacian of the gray image after an anti-aliased resize to `short_side`."""
    im = Image.fromarray(pixels)
    scale = short_side / min(im.size)
    small = im.resize((round(im.width * scale), round(im.height * scale)), Image.BILINEAR).convert("L")
    g = np.asarray(small, dtype=np.float64)
    laplacian = 4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:]
    return float(np.abs(laplacian).mean())


@pytest.mark.parametrize("plain, textured", [(0, 1), (3, 4)])
def test_fine_texture_survives_64px_but_not_32px(plain, textured):
    # The two classes of a pair draw the same random numbers, so the same seed gives the same
    # picture with and without the texture: the comparison isolates the texture.
    def energy_ratio(side):
        energy = {c: np.mean([_high_frequency_energy(render_synthetic_image(c, np.random.default_rng([5, i])), side)
                              for i in range(30)]) for c in (plain, textured)}
        return energy[textured] / energy[plain]

    at_64, at_32 = energy_ratio(64), energy_ratio(32)
    assert at_64 > 1.2                  # stripes/dots add clear fine detail at 64 px
    assert at_32 < 1.12                 # and (almost) none survives at 32 px
    assert at_64 - at_32 > 0.15


def test_texture_pairs_differ_only_by_texture():
    for plain, textured in ((0, 1), (3, 4)):
        a = render_synthetic_image(plain, np.random.default_rng(7)).astype(int)
        b = render_synthetic_image(textured, np.random.default_rng(7)).astype(int)
        assert a.shape == b.shape
        changed = np.abs(a - b).max(axis=2) > 0
        assert 0.01 < changed.mean() < 0.4          # only the object's pixels change
        assert (b <= a).all()                       # the texture only darkens


def test_some_objects_straddle_edges_and_centre_crops_lose_them():
    # Pixels that differ between a disc and a striped disc drawn from the same generator are the
    # object's: that locates the object without access to the drawing code.
    touching, lost = 0, 0
    n = 200
    for i in range(n):
        plain = render_synthetic_image(0, np.random.default_rng([3, i])).astype(int)
        striped = render_synthetic_image(1, np.random.default_rng([3, i])).astype(int)
        mask = np.abs(plain - striped).max(axis=2) > 0
        height, width = mask.shape
        touching += bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        lost += mask[top:top + side, left:left + side].sum() < 0.5 * mask.sum()
    assert 0.15 < touching / n < 0.4          # about EDGE_FRACTION of the objects cross an edge
    assert lost / n > 0.04                    # a square centre crop keeps < half of some objects


def test_render_is_a_pure_function_of_the_generator():
    a = render_synthetic_image(3, np.random.default_rng(42))
    b = render_synthetic_image(3, np.random.default_rng(42))
    assert a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3
    assert np.array_equal(a, b)
    with pytest.raises(ValueError):
        render_synthetic_image(10, np.random.default_rng(0))
    with pytest.raises(TypeError):
        render_synthetic_image(0, 42)


def _labels(root: Path) -> list[dict]:
    with open(root / "labels.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_label_noise_moves_exactly_that_fraction_of_train_images(tmp_path, tiny):
    noisy = make_synthetic_imagenette(tmp_path, variant="tiny", label_noise=0.25)
    assert noisy.name == "imagenette-synthetic-tiny-noise25"
    rows = _labels(noisy)
    wrong = [r for r in rows if r["label"] != r["true_label"]]
    assert len(wrong) == round(0.25 * 80)
    assert all(r["file"].startswith("train/") for r in wrong)
    for r in rows:                                   # labels.csv describes the folders
        assert (noisy / r["file"]).parent.name == r["label"]
    # Same pictures as the clean set, some in other folders; validation untouched.
    assert image_bytes(noisy, "train") == image_bytes(tiny, "train")
    assert file_bytes(noisy / "val") == file_bytes(tiny / "val")
    # Deterministic.
    again = make_synthetic_imagenette(tmp_path / "again", variant="tiny", label_noise=0.25)
    assert file_bytes(again) == file_bytes(noisy)


def test_clean_labels_csv_agrees(tiny):
    rows = _labels(tiny)
    assert len(rows) == 120
    assert all(r["label"] == r["true_label"] for r in rows)


def test_half_written_folder_is_regenerated(tmp_path, tiny):
    root = tmp_path / synthetic_name("tiny")
    (root / "train" / "n00_disc").mkdir(parents=True)
    (root / "train" / "n00_disc" / "leftover.JPEG").write_bytes(b"half")
    assert make_synthetic_imagenette(tmp_path, variant="tiny") == root
    assert file_bytes(root) == file_bytes(tiny)
    assert [p.name for p in tmp_path.iterdir()] == [root.name]   # no staging folders left behind


def test_complete_folder_is_reused(tmp_path):
    root = make_synthetic_imagenette(tmp_path, variant="tiny")
    marker = root / ".generated.json"
    before = marker.stat().st_mtime_ns
    start = time.perf_counter()
    assert make_synthetic_imagenette(tmp_path, variant="tiny") == root
    assert time.perf_counter() - start < 0.1
    assert marker.stat().st_mtime_ns == before
    assert json.loads(marker.read_text())["n_train"] == 80


def test_concurrent_generation_is_safe(tmp_path, tiny):
    results, errors = [], []

    def generate():
        try:
            results.append(make_synthetic_imagenette(tmp_path, variant="tiny"))
        except Exception as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=generate) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(results)) == 1
    assert file_bytes(results[0]) == file_bytes(tiny)
    assert [p.name for p in tmp_path.iterdir()] == [results[0].name]


@pytest.mark.parametrize("kwargs, error", [
    ({"variant": "huge"}, ValueError),
    ({"label_noise": 1.0}, ValueError),
    ({"label_noise": -0.1}, ValueError),
    ({"label_noise": 0.123}, ValueError),
    ({"label_noise": "0.2"}, TypeError),
    ({"seed": -1}, ValueError),
    ({"seed": 1.5}, TypeError),
])
def test_make_synthetic_rejects_bad_arguments(tmp_path, kwargs, error):
    with pytest.raises(error):
        make_synthetic_imagenette(tmp_path, **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_get_imagenette_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="unknown data set"):
        get_imagenette("imagewoof")
    with pytest.raises(ValueError, match="url"):
        get_imagenette("synthetic", url="http://127.0.0.1/x.tgz")
    with pytest.raises(ValueError, match="variant must be one of"):
        get_imagenette("160", variant="huge")
    with pytest.raises(TypeError):
        get_imagenette(160)


# --------------------------------------------------------------------------------------------
# Real Imagenette: local copy, download from a local server, offline failure
# --------------------------------------------------------------------------------------------
def test_imagenette_path_env_var_is_used(monkeypatch, tiny):
    monkeypatch.setenv("IMAGENETTE_PATH", str(tiny))
    assert get_imagenette("160", variant="all") == tiny
    assert get_imagenette("full", variant="all", url="http://127.0.0.1:9/never-used.tgz") == tiny


def test_imagenette_path_without_val_is_a_clear_error(monkeypatch, tmp_path):
    (tmp_path / "train").mkdir()
    monkeypatch.setenv("IMAGENETTE_PATH", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"IMAGENETTE_PATH.*val/"):
        get_imagenette("320")


def _jpeg(colour=(200, 100, 50), size=(40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="JPEG")
    return buffer.getvalue()


def _make_archive(path: Path, top: str) -> None:
    """A miniature imagenette2 .tgz: top/{train,val}/<wnid>/*.JPEG."""
    with tarfile.open(path, "w:gz") as tar:
        for split, n in (("train", 3), ("val", 2)):
            for wnid in ("n01440764", "n02102040"):
                for i in range(n):
                    payload = _jpeg()
                    info = tarfile.TarInfo(f"{top}/{split}/{wnid}/{wnid}_{i}.JPEG")
                    info.size = len(payload)
                    tar.addfile(info, io.BytesIO(payload))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Runs in a fresh interpreter: fastai reads FASTAI_HOME once per process (fastai_cfg is cached),
# so a monkeypatched variable would not reach it in this process.
_REAL_DATA_SCRIPT = r"""
import json, sys, time
from workbook.data import get_imagenette
served, dead, out = sys.argv[1:4]
result = {}
path = get_imagenette("160", variant="all", url=served)
result["downloaded"] = str(path)
start = time.perf_counter()
result["cached"] = str(get_imagenette("160", variant="all", url=dead + "/imagenette2-160.tgz"))
result["cached_s"] = time.perf_counter() - start
# WORKBOOK_DATA=160 is set: the default data set is a sample of the downloaded copy
result["sample"] = str(get_imagenette(url=dead + "/imagenette2-160.tgz"))
for key, url in (("refused", dead + "/imagenette2-320.tgz"),
                 ("unresolvable", "http://imagenette.invalid/imagenette2-320.tgz")):
    start = time.perf_counter()
    try:
        get_imagenette("320", url=url)
        result[key] = None
    except ConnectionError as error:
        result[key] = str(error)
    result[key + "_s"] = time.perf_counter() - start
open(out, "w").write(json.dumps(result))
"""


@pytest.fixture(scope="module")
def real_data_run(tmp_path_factory):
    """Serve a miniature imagenette2-160.tgz on 127.0.0.1 and exercise get_imagenette in a subprocess."""
    work = tmp_path_factory.mktemp("real")
    served_dir = work / "served"
    served_dir.mkdir()
    _make_archive(served_dir / "imagenette2-160.tgz", "imagenette2-160")
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(served_dir)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    home = work / "home"
    home.mkdir()
    checks = Path(sys.modules["fastai"].__file__).parent / "data" / "download_checks.py"
    checks_before = checks.read_bytes()
    env = {**os.environ, "HOME": str(home), "FASTAI_HOME": str(work / "fastai_home"),
           "TORCH_HOME": str(work / "torch"), "MPLCONFIGDIR": str(work / "mpl"),
           "WORKBOOK_CACHE": str(work / "cache"), "WORKBOOK_DATA": "160",
           "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    env.pop("IMAGENETTE_PATH", None)
    out = work / "result.json"
    try:
        port = server.server_address[1]
        completed = subprocess.run(
            [sys.executable, "-c", _REAL_DATA_SCRIPT, f"http://127.0.0.1:{port}/imagenette2-160.tgz",
             f"http://127.0.0.1:{_closed_port()}", str(out)],
            env=env, capture_output=True, text=True, timeout=120)
    finally:
        server.shutdown()
    assert completed.returncode == 0, completed.stderr[-3000:]
    return {"result": json.loads(out.read_text()), "work": work, "home": home,
            "checks_unchanged": checks.read_bytes() == checks_before}


@pytest.mark.slow
def test_download_from_local_server_extracts_imagenette_layout(real_data_run):
    path = Path(real_data_run["result"]["downloaded"])
    assert path == real_data_run["work"] / "fastai_home" / "data" / "imagenette2-160"
    assert sorted(p.name for p in (path / "train").iterdir()) == ["n01440764", "n02102040"]
    assert len(list((path / "train").rglob("*.JPEG"))) == 6
    assert len(list((path / "val").rglob("*.JPEG"))) == 4
    assert (real_data_run["work"] / "fastai_home" / "archive" / "imagenette2-160.tgz").is_file()


def test_download_writes_nothing_to_home_or_installed_packages(real_data_run):
    assert list(real_data_run["home"].iterdir()) == []
    assert real_data_run["checks_unchanged"]


def test_extracted_copy_is_reused_without_network(real_data_run):
    result = real_data_run["result"]
    assert result["cached"] == result["downloaded"]
    assert result["cached_s"] < 1.0
    sample = Path(result["sample"])
    assert sample.parent == real_data_run["work"] / "cache" / "data"
    assert {p.resolve() for p in sample.rglob("*.JPEG")} == set(Path(result["downloaded"]).rglob("*.JPEG"))


@pytest.mark.parametrize("case", ["refused", "unresolvable"])
def test_offline_download_fails_fast_with_advice(real_data_run, case):
    message = real_data_run["result"][case]
    assert message is not None, "expected a ConnectionError"
    assert real_data_run["result"][case + "_s"] < 10
    assert "IMAGENETTE_PATH" in message and "get_imagenette()" in message


# --------------------------------------------------------------------------------------------
# Opening images: grayscale, CMYK, corrupt files
# --------------------------------------------------------------------------------------------
def test_grayscale_jpeg_opens_as_rgb(tmp_path):
    path = tmp_path / "gray.JPEG"
    Image.new("L", (30, 20), 128).save(path)
    img = open_rgb(path)
    assert img.mode == "RGB" and img.size == (30, 20)
    pixels = np.asarray(img).astype(int)
    assert np.all(np.abs(pixels - 128) <= 2)


def test_cmyk_jpeg_opens_as_rgb(tmp_path):
    path = tmp_path / "cmyk.JPEG"
    Image.new("CMYK", (24, 16), (0, 255, 255, 0)).save(path)     # pure red in CMYK
    assert Image.open(path).mode == "CMYK"
    img = open_rgb(path)
    assert img.mode == "RGB" and img.size == (24, 16)
    red, green, blue = np.asarray(img).reshape(-1, 3).mean(0)
    assert red > 200 and green < 60 and blue < 60


def _truncate(path: Path, keep: float = 0.5) -> None:
    payload = path.read_bytes()
    path.write_bytes(payload[: int(len(payload) * keep)])


def test_truncated_jpeg_error_names_the_file_and_the_fix(tmp_path):
    path = tmp_path / "broken.JPEG"
    Image.fromarray(render_synthetic_image(0, np.random.default_rng(0))).save(path)
    _truncate(path)
    with pytest.raises(CorruptImageError) as info:
        open_rgb(path)
    message = str(info.value)
    assert str(path) in message
    assert "delete" in message and "find_corrupt_images" in message
    assert isinstance(info.value, OSError)


def test_not_an_image_is_reported_as_corrupt(tmp_path):
    path = tmp_path / "text.JPEG"
    path.write_text("not a picture")
    with pytest.raises(CorruptImageError, match="text.JPEG"):
        open_rgb(path)


def test_path_problems_are_not_reported_as_corrupt(tmp_path):
    with pytest.raises(FileNotFoundError):
        open_rgb(tmp_path / "absent.JPEG")
    with pytest.raises(IsADirectoryError):
        open_rgb(tmp_path)
    with pytest.raises(TypeError):
        open_rgb(42)


def _copy_tree(src: Path, dst: Path) -> Path:
    for p in src.rglob("*"):
        if p.is_file():
            (dst / p.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
            (dst / p.relative_to(src)).write_bytes(p.read_bytes())
    return dst


def test_corrupt_file_in_a_data_set(tmp_path, tiny):
    root = _copy_tree(tiny, tmp_path / "copy")
    victim = sorted((root / "train" / "n02_ring").iterdir())[0]
    _truncate(victim)
    assert find_corrupt_images(root) == [victim]
    assert find_corrupt_images(tiny) == []
    with pytest.raises(CorruptImageError, match=victim.name):
        image_folder_stats(root / "train")                          # normalize="data" reads it first
    dls = get_dls(root, 32, bs=16, normalize=None)
    with pytest.raises(CorruptImageError, match=victim.name):
        for _ in dls.train:
            pass


# --------------------------------------------------------------------------------------------
# DataLoaders
# --------------------------------------------------------------------------------------------
def test_get_dls_shapes_split_and_vocab(tiny):
    dls = get_dls(tiny, 32, bs=16)
    assert len(dls.train_ds) == 80 and len(dls.valid_ds) == 40
    assert list(dls.vocab) == list(CLASS_NAMES) and dls.c == 10
    xb, yb = dls.train.one_batch()
    assert xb.shape == (16, 3, 32, 32) and xb.dtype == torch.float32
    assert yb.shape == (16,)
    xv, _ = dls.valid.one_batch()
    assert xv.shape == (16, 3, 32, 32)


def _valid_pixels(dls) -> torch.Tensor:
    """All validation pixels as a (3, n) CPU tensor (batches are on the GPU when there is one)."""
    return torch.cat([xb.cpu() for xb, _ in dls.valid]).transpose(0, 1).reshape(3, -1)


def test_normalize_options(tiny):
    raw = _valid_pixels(get_dls(tiny, 32, bs=16, normalize=None, augment=False))
    assert torch.allclose(raw.mean(1), torch.tensor([0.60, 0.36, 0.21]), atol=0.05)

    data_norm = _valid_pixels(get_dls(tiny, 32, bs=16, normalize="data", augment=False))
    assert data_norm.mean(1).abs().max() < 0.3
    assert ((data_norm.std(1) > 0.7) & (data_norm.std(1) < 1.4)).all()

    mean, std = IMAGENET_STATS
    imagenet = _valid_pixels(get_dls(tiny, 32, bs=16, normalize="imagenet", augment=False))
    expected = (raw - torch.tensor(mean)[:, None]) / torch.tensor(std)[:, None]
    assert torch.allclose(imagenet, expected, atol=1e-5)

    custom = _valid_pixels(get_dls(tiny, 32, bs=16, normalize=((0.5, 0.5, 0.5), (0.25, 0.25, 0.25)),
                                   augment=False))
    assert torch.allclose(custom, (raw - 0.5) / 0.25, atol=1e-5)


def test_same_seed_same_first_batch(tiny):
    def first_batch(seed, augment):
        dls = get_dls(tiny, 32, bs=16, seed=seed, augment=augment, normalize=None)
        with no_random(0):                     # augmentations draw from torch's global generator
            return dls.train.one_batch()

    for augment in (False, True):
        (xa, ya), (xb, yb) = first_batch(0, augment), first_batch(0, augment)
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    _, y_other = first_batch(1, False)
    _, y_zero = first_batch(0, False)
    assert not torch.equal(y_other, y_zero)


def test_augment_false_is_deterministic_across_epochs_for_valid(tiny):
    dls = get_dls(tiny, 32, bs=16, augment=False)
    assert torch.equal(_valid_pixels(dls), _valid_pixels(dls))


@pytest.mark.parametrize("kwargs, error", [
    ({"size": 0}, ValueError),
    ({"size": 1.5}, TypeError),
    ({"size": 32, "bs": 0}, ValueError),
    ({"size": 32, "item_size": 16}, ValueError),
    ({"size": 32, "normalize": "bogus"}, ValueError),
    ({"size": 32, "normalize": ((0, 0), (1, 1))}, ValueError),
    ({"size": 32, "normalize": 3}, TypeError),
    ({"size": 32, "normalize": ((0, 0, 0), (1, 0, 1))}, ValueError),
    ({"size": 32, "num_workers": -1}, ValueError),
    ({"size": 32, "augment": "yes"}, TypeError),
])
def test_get_dls_rejects_bad_arguments(tiny, kwargs, error):
    with pytest.raises(error):
        get_dls(tiny, **kwargs)


def test_get_dls_needs_imagenette_layout(tmp_path):
    (tmp_path / "train").mkdir()
    with pytest.raises(FileNotFoundError, match="val"):
        get_dls(tmp_path, 32)


@pytest.mark.parametrize("module", [data, synthetic, cache, download])
def test_module_exports_exist(module):
    for name in module.__all__:
        assert hasattr(module, name), name


def test_the_command_line_generates_the_embedded_set(monkeypatch, tmp_path, capsys):
    # `make data` runs `python -m workbook.synthetic`: it builds the set under $WORKBOOK_CACHE/data.
    monkeypatch.setenv("WORKBOOK_CACHE", str(tmp_path))
    synthetic.main(["--variant", "tiny", "--label-noise", "0.25"])
    root = tmp_path / "data" / "imagenette-synthetic-tiny-noise25"
    assert capsys.readouterr().out == f"{root}  (80 train + 40 val images, synthetic)\n"
    assert len(list(root.rglob("*.JPEG"))) == 120


def test_the_generator_imports_neither_torch_nor_fastai():
    # what keeps `make data` short on a fresh clone: importing fastai took longer than generating the set
    code = "import sys, workbook.synthetic; print(sorted({'torch', 'fastai'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"


def test_generated_folder_is_readable_by_everyone(tiny):
    assert tiny.stat().st_mode & 0o755 == 0o755


# --------------------------------------------------------------------------------------------
# The WORKBOOK_DATA switch, samples of real data, class names
# --------------------------------------------------------------------------------------------
@pytest.fixture()
def real_copy(tmp_path, tiny, monkeypatch):
    """IMAGENETTE_PATH set to a copy of the tiny set under real WordNet ids; subsets go to tmp_path/cache."""
    from tests.real_layout import imagenette_copy
    copy = imagenette_copy(tiny, tmp_path / "imagenette2-160")
    monkeypatch.setenv("IMAGENETTE_PATH", str(copy))
    monkeypatch.setenv("WORKBOOK_CACHE", str(tmp_path / "cache"))
    return copy


def test_workbook_data_switches_the_default_data_set(real_copy, monkeypatch):
    monkeypatch.setenv("WORKBOOK_DATA", "160")
    assert data.data_name() == "160"
    sample = get_imagenette(variant="tiny")
    assert sample.parent == real_copy.parent / "cache" / "data"
    assert data.class_names(sample)[2] == "cassette player"            # n02979186, not "ring"
    monkeypatch.setenv("WORKBOOK_DATA", "synthetic")
    assert get_imagenette(variant="tiny").name == "imagenette-synthetic-tiny"
    monkeypatch.delenv("WORKBOOK_DATA")
    assert data.data_name() == "synthetic"
    monkeypatch.setenv("WORKBOOK_DATA", "imagewoof")
    with pytest.raises(ValueError, match=r"WORKBOOK_DATA='imagewoof' is not a data set: set it to one of synthetic"):
        get_imagenette()


def test_real_samples_are_nested_links_with_the_variant_counts(real_copy):
    tiny_sample = get_imagenette("160", variant="tiny", seed=1)
    # 8 train / 4 val per class in the copy: "tiny" takes all of them, "small" cannot take more.
    assert data.describe_data(tiny_sample) == (
        f"tiny subset (seed 1) of the Imagenette-layout folder {real_copy.resolve()}: 80 train / 40 val images")
    links = sorted(tiny_sample.rglob("*.JPEG"))
    assert len(links) == 120 and all(p.is_symlink() and p.resolve().is_relative_to(real_copy.resolve())
                                     for p in links)
    for link in links:      # every link sits in the class folder of the file it points to
        assert link.parent.name == link.resolve().parent.name and link.parts[-3] == link.resolve().parts[-3]
    assert get_imagenette("160", variant="tiny", seed=1) == tiny_sample      # built once, then reused
    assert get_imagenette("160", variant="all") == real_copy                    # everything: the folder itself


@pytest.mark.slow
def test_a_real_sample_takes_the_same_share_of_every_class_and_small_is_inside_large(tmp_path):
    """A source with more images than a variant keeps: seeded per-class samples, nested across variants."""
    source = tmp_path / "imagenette"                        # the large variant's counts, 700 / 100 per class;
    for split, count in zip(("train", "val"), synthetic.VARIANTS["large"]):  # a sample links, never opens, them
        for name in CLASS_NAMES:
            (source / split / name).mkdir(parents=True)
            for i in range(count):
                (source / split / name / f"{name}_{i:04d}.JPEG").touch()
    small = data.make_subset(source, tmp_path / "subsets", variant="small")
    large = data.make_subset(source, tmp_path / "subsets", variant="large")
    small_files = {p.resolve() for p in small.rglob("*.JPEG")}
    large_files = {p.resolve() for p in large.rglob("*.JPEG")}
    assert len(small_files) == 10 * (150 + 50) and small_files < large_files == set(source.rglob("*.JPEG"))
    for name in CLASS_NAMES:
        assert len(list((small / "train" / name).iterdir())) == 150
        assert len(list((small / "val" / name).iterdir())) == 50
    picked = sorted(p.name for p in (small / "train" / CLASS_NAMES[0]).iterdir())
    first = sorted(p.name for p in (source / "train" / CLASS_NAMES[0]).iterdir())[:150]
    assert picked != first                                                  # a seeded sample, not the first files
    other_seed = data.make_subset(source, tmp_path / "subsets", variant="small", seed=1)
    assert {p.resolve() for p in other_seed.rglob("*.JPEG")} != small_files


def test_label_noise_on_real_data_moves_that_share_of_training_links(real_copy):
    noisy = get_imagenette("160", variant="tiny", label_noise=0.25)
    with open(noisy / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    train = [r for r in rows if r["file"].startswith("train/")]
    wrong = [r for r in train if r["label"] != r["true_label"]]
    assert len(train) == 80 and len(wrong) == 20
    assert all(r["label"] == r["true_label"] for r in rows if r["file"].startswith("val/"))
    for r in rows:          # the folder is the label; the linked file lies in the true class's folder
        link = noisy / r["file"]
        assert link.parent.name == r["label"] and link.resolve().parent.name == r["true_label"]
    assert data.describe_data(noisy).endswith("25% of the training labels wrong")


def test_class_names_come_from_the_folders(tiny, tmp_path):
    assert data.class_names(tiny) == tuple(name.split("_", 1)[1] for name in CLASS_NAMES)
    (tmp_path / "train" / "n02102040").mkdir(parents=True)
    (tmp_path / "train" / "my_class").mkdir()
    assert data.class_names(tmp_path) == ("my_class", "English springer")      # sorted folders: dls.vocab order


def test_real_data_options_are_checked_before_any_download(monkeypatch):
    monkeypatch.delenv("IMAGENETTE_PATH", raising=False)
    for kwargs in ({"variant": "huge"}, {"label_noise": 0.123}, {"seed": -1}):
        with pytest.raises(ValueError):
            get_imagenette("160", url="http://127.0.0.1:9/never-used.tgz", **kwargs)
    with pytest.raises(ValueError, match="pass name='synthetic', variant='tiny'"):
        get_imagenette("synthetic-large", variant="tiny")

"""Recordings are read within bounds: a zip bomb, a repeated-reference pickle, a huge tensor view, a link
or a FIFO in place of a recording is refused before it can exhaust the grader; honest recordings load."""
import io
import os
import struct
import zipfile

import pytest
import torch

from autograder.judge import judge
from autograder.safe_load import RecordingLimits, RecordingRefused, load_recording
from workbook.recording_format import encode_value

SMALL = RecordingLimits(file_bytes=2**20, inflated_bytes=2**20, nodes=10_000, tensor_bytes=2**20)


def _saved(payload) -> bytes:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def _deflated(data: bytes, extra: dict[str, bytes] | None = None) -> bytes:
    """The same torch.save archive with every entry deflated, plus `extra` entries."""
    extra = extra or {}
    source, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for info in source.infolist():
            z.writestr(info.filename, source.read(info.filename))
        for name, body in extra.items():
            z.writestr(name, body)
    return out.getvalue()


def test_an_honest_recording_loads(tmp_path):
    path = tmp_path / "r.pt"
    path.write_bytes(_saved({"results": [{"ok": True, "value": encode_value((torch.ones(3), torch.zeros(3)))}]}))
    assert torch.equal(load_recording(path)["results"][0]["value"]["items"][0]["data"], torch.ones(3))


def test_a_deflated_recording_really_inflates_without_the_bound_and_is_refused_with_it(tmp_path):
    body = bytes(4 * 2**20)  # 4 MiB of zeros deflate to a few KiB
    path = tmp_path / "bomb.pt"
    path.write_bytes(_deflated(_saved({"results": [torch.zeros(2**20)]})))
    assert path.stat().st_size < 64 * 2**10
    assert load_recording(path, RecordingLimits())["results"][0].numel() == 2**20  # torch inflates deflated entries
    path.write_bytes(_deflated(_saved({"results": []}), {"archive/data/9": body}))
    with pytest.raises(RecordingRefused, match=r"inflates to 4 MiB, more than the 1 MiB"):
        load_recording(path, SMALL)


def test_a_central_directory_claiming_8_gib_is_refused_before_inflating(tmp_path):
    data = bytearray(_deflated(_saved({"results": []}), {"archive/data/9": bytes(2**16)}))
    # Rewrite the last entry's uncompressed size in the central directory as 0xFFFFFFFF with a zip64
    # extra field of 8 GiB: what miniz would allocate before inflating anything.
    start = data.rfind(b"PK\x01\x02")
    name_len, extra_len = struct.unpack_from("<HH", data, start + 28)
    zip64 = struct.pack("<HHQ", 1, 8, 8 * 2**30)
    data[start + 24:start + 28] = struct.pack("<I", 0xFFFFFFFF)
    data[start + 30:start + 32] = struct.pack("<H", extra_len + len(zip64))
    at = start + 46 + name_len + extra_len
    data[at:at] = zip64
    end = data.rfind(b"PK\x05\x06")
    size = struct.unpack_from("<I", data, end + 12)[0]
    data[end + 12:end + 16] = struct.pack("<I", size + len(zip64))
    path = tmp_path / "claims.pt"
    path.write_bytes(bytes(data))
    assert sum(i.file_size for i in zipfile.ZipFile(path).infolist()) > 8 * 2**30
    with pytest.raises(RecordingRefused, match=r"inflates to 819\d MiB"):
        load_recording(path)


def test_repeated_references_are_counted_each_time(tmp_path):
    row = [0] * 100
    path = tmp_path / "laughs.pt"
    path.write_bytes(_saved({"results": [row] * 200}))  # 20,000 values from a 1 KiB pickle
    assert path.stat().st_size < 16 * 2**10
    with pytest.raises(RecordingRefused, match="more than 10000 values"):
        load_recording(path, SMALL)


def test_a_tensor_view_larger_than_its_storage_is_refused(tmp_path):
    path = tmp_path / "view.pt"
    path.write_bytes(_saved({"results": [torch.zeros(1).expand(2**20, 2**10)]}))
    assert path.stat().st_size < 16 * 2**10
    with pytest.raises(RecordingRefused, match="tensors hold more than"):
        load_recording(path)


def test_the_legacy_format_a_link_and_a_fifo_are_refused(tmp_path):
    legacy = tmp_path / "legacy.pt"
    torch.save({"results": []}, legacy, _use_new_zipfile_serialization=False)
    with pytest.raises(RecordingRefused, match="not in torch.save's format"):
        load_recording(legacy)
    link = tmp_path / "link.pt"
    link.symlink_to(legacy)
    with pytest.raises(RecordingRefused, match="not a regular file"):
        load_recording(link)
    fifo = tmp_path / "fifo.pt"
    os.mkfifo(fifo)
    with pytest.raises(RecordingRefused, match="not a regular file"):
        load_recording(fifo)  # returns at once: a FIFO without a writer must not block the grader
    with pytest.raises(FileNotFoundError):
        load_recording(tmp_path / "missing.pt")


def test_the_judge_turns_a_refused_recording_into_a_zero_with_advice(tmp_path):
    (tmp_path / "outputs").mkdir()
    (tmp_path / "outputs" / "channel_stats_values.pt").write_bytes(b"PK\x03\x04 not a zip")
    verdict = judge("channel_stats_values", [], tmp_path)
    assert not verdict.passed
    assert "not a readable zip archive" in verdict.message and "run all cells and submit again" in verdict.message


def test_a_tensor_subclass_is_recorded_as_a_plain_tensor():
    from fastai.torch_core import TensorBase, TensorImage
    buffer = io.BytesIO()
    torch.save(encode_value((TensorImage(torch.ones(2, 3)), TensorBase(torch.arange(3.0)))), buffer)
    loaded = torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)
    first, second = (item["data"] for item in loaded["items"])
    assert type(first) is torch.Tensor and torch.equal(first, torch.ones(2, 3))
    assert type(second) is torch.Tensor and torch.equal(second, torch.arange(3.0))

"""Read a recording the student's kernel wrote, without letting it take the grader down.

A recording is untrusted: `torch.load(weights_only=True)` refuses code, but not size. A small zip can
declare entries that inflate to gigabytes, a pickle can repeat one list by reference until walking it
never ends, and a tensor view can claim billions of elements over a one-element storage. Every bound
is checked here, before and after loading, in the grader's process; a recording past one is refused
with a reason the student can act on. Honest recordings of this workbook are below 1 MB.
"""
import errno
import io
import os
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = ["RecordingLimits", "RecordingRefused", "load_recording"]

ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format since torch 1.6; the legacy format is not accepted


class RecordingRefused(ValueError):
    """The recording breaks a bound or is not a recording at all; the message says which."""


@dataclass(frozen=True)
class RecordingLimits:
    """Bounds on one recording (defaults: over 100× the largest honest one, far below a worker's memory)."""
    file_bytes: int = 64 * 2**20        # the file on disk
    inflated_bytes: int = 64 * 2**20    # the sum of the zip's entries, as its central directory states them
    entries: int = 4096                 # entries in the zip
    nodes: int = 200_000                # containers, scalars and tensors visited, repeated references each time
    tensor_bytes: int = 64 * 2**20      # all tensors' logical sizes (a view can be larger than its storage)


def _read_regular_file(path: Path, limit: int) -> bytes:
    """The bytes of `path`, which must be a regular file (not a link, FIFO or device) of at most `limit` bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        if e.errno == errno.ENOENT:
            raise FileNotFoundError(path) from e
        raise RecordingRefused(f"the recording is not a regular file ({e.strerror})") from e
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise RecordingRefused("the recording is not a regular file")
        if info.st_size > limit:
            raise RecordingRefused(f"the recording is {info.st_size / 2**20:.0f} MiB, more than the "
                                   f"{limit / 2**20:.0f} MiB a recording may take")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise RecordingRefused(f"the recording is more than the {limit / 2**20:.0f} MiB a recording may take")
    return data


def _check_zip(data: bytes, limits: RecordingLimits) -> None:
    """Refuse a zip whose central directory declares too much, before anything is inflated."""
    if not data.startswith(ZIP_MAGIC):
        raise RecordingRefused("the recording is not in torch.save's format")
    try:
        entries = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as e:
        raise RecordingRefused(f"the recording is not a readable zip archive ({type(e).__name__})") from e
    if len(entries) > limits.entries:
        raise RecordingRefused(f"the recording holds {len(entries)} entries, more than {limits.entries}")
    inflated = sum(e.file_size for e in entries)
    if inflated > limits.inflated_bytes:
        raise RecordingRefused(f"the recording inflates to {inflated / 2**20:.0f} MiB, more than the "
                               f"{limits.inflated_bytes / 2**20:.0f} MiB a recording may take")


def _check_structure(payload, limits: RecordingLimits) -> None:
    """Walk the loaded object as the judge will (repeated references counted each time): bounded work."""
    stack, nodes, tensor_bytes = [payload], 0, 0
    while stack:
        value = stack.pop()
        nodes += 1
        if nodes > limits.nodes:
            raise RecordingRefused(f"the recording holds more than {limits.nodes} values")
        if isinstance(value, torch.Tensor):
            if value.layout != torch.strided or value.is_quantized or value.device.type != "cpu":
                raise RecordingRefused(f"the recording holds a tensor the recorder never writes ({value.layout}, "
                                       f"{value.device.type})")
            tensor_bytes += value.numel() * value.element_size()
            if tensor_bytes > limits.tensor_bytes:
                raise RecordingRefused(f"the recording's tensors hold more than {limits.tensor_bytes / 2**20:.0f} MiB")
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, (list, tuple)):
            stack.extend(value)


def load_recording(path: Path, limits: RecordingLimits = RecordingLimits()):
    """Load the recording at `path` within `limits`.

    Raises:
        FileNotFoundError: nothing was recorded.
        RecordingRefused: a bound was broken, or the file is not a recording torch.load accepts.
    """
    data = _read_regular_file(Path(path), limits.file_bytes)
    _check_zip(data, limits)
    try:
        payload = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception as e:  # anything else the student's code wrote into the file
        raise RecordingRefused(f"the recording could not be read ({type(e).__name__})") from e
    _check_structure(payload, limits)
    return payload

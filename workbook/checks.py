"""Public checks for the visible tests in the notebooks.

Each check raises AssertionError with one line that says what was called, what was expected and
what came back, so a student sees the problem without reading a traceback.
"""
import torch

__all__ = ["expect_close", "expect_equal", "expect_raises", "expect_shape", "describe"]


def describe(value, max_items: int = 6) -> str:
    """A short one-line description of a value: shape, dtype, device and the first numbers."""
    if isinstance(value, torch.Tensor):
        flat = value.detach().flatten().tolist()[:max_items]
        numbers = ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in flat)
        more = ", ..." if value.numel() > max_items else ""
        return f"tensor [{numbers}{more}] (shape {list(value.shape)}, {value.dtype}, {value.device})"
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def expect_shape(received, shape, what: str) -> None:
    """Fail unless `received` is a tensor of the given shape."""
    if not isinstance(received, torch.Tensor):
        raise AssertionError(f"{what}: expected a torch.Tensor of shape {list(shape)}, received {describe(received)}")
    if list(received.shape) != list(shape):
        raise AssertionError(f"{what}: expected shape {list(shape)}, received shape {list(received.shape)}")


def expect_close(received, expected, what: str, *, rtol: float = 1e-4, atol: float = 1e-5) -> None:
    """Fail unless `received` is a tensor equal to `expected` within tolerance (same shape)."""
    expected = torch.as_tensor(expected)
    expect_shape(received, expected.shape, what)
    if not torch.allclose(received.detach().cpu().to(torch.float64), expected.cpu().to(torch.float64),
                          rtol=rtol, atol=atol):
        raise AssertionError(f"{what}: expected {describe(expected)}, received {describe(received)}")


def expect_equal(received, expected, what: str) -> None:
    """Fail unless `received == expected` for plain values (strings, numbers, lists)."""
    if type(received) is not type(expected) or received != expected:
        raise AssertionError(f"{what}: expected {expected!r}, received {describe(received)}")


def expect_raises(error_types, fn, *args, what: str, **kwargs) -> None:
    """Fail unless `fn(*args, **kwargs)` raises one of `error_types`."""
    try:
        value = fn(*args, **kwargs)
    except error_types:
        return
    except Exception as e:
        raise AssertionError(f"{what}: expected {_names(error_types)}, but it raised {type(e).__name__}: {e}") from None
    raise AssertionError(f"{what}: expected {_names(error_types)}, but it returned {describe(value)}")


def _names(error_types) -> str:
    types = error_types if isinstance(error_types, tuple) else (error_types,)
    return " or ".join(t.__name__ for t in types)

"""Public checks for the visible tests in the notebooks.

Each check raises AssertionError with one line that says what was checked, what was expected and what
came back (``<what>: expected <X>, received <Y>``), so a student sees the problem in the last line of the
traceback without reading the rest of it.
"""
import torch

__all__ = ["expect_close", "expect_equal", "expect_one_of", "expect_raises", "expect_shape", "describe", "normal_answer"]


def describe(value, max_items: int = 6) -> str:
    """A short one-line description of a value: shape, dtype, device and the first numbers of a tensor,
    the name of a type, else the repr cut to 120 characters (with line breaks folded)."""
    if isinstance(value, torch.Tensor):
        flat = value.detach().flatten().tolist()[:max_items]
        numbers = ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in flat)
        more = ", ..." if value.numel() > max_items else ""
        return f"tensor [{numbers}{more}] (shape {list(value.shape)}, {value.dtype}, {value.device})"
    if isinstance(value, type):
        return value.__qualname__ if value.__module__ == "builtins" else f"{value.__module__}.{value.__qualname__}"
    text = " ".join(repr(value).split())
    return text if len(text) <= 120 else text[:117] + "..."


def expect_shape(received, shape, what: str) -> None:
    """Fail unless `received` is a tensor of the given shape."""
    if not isinstance(received, torch.Tensor):
        raise AssertionError(f"{what}: expected a torch.Tensor of shape {list(shape)}, received {describe(received)}")
    if list(received.shape) != list(shape):
        raise AssertionError(f"{what}: expected shape {list(shape)}, received shape {list(received.shape)}")


def expect_close(received, expected, what: str, *, rtol: float = 1e-4, atol: float = 1e-5) -> None:
    """Fail unless `received` is a tensor equal to `expected` within tolerance (same shape).

    The message names the largest difference and where it is, so a mistake in one entry is easy to find.
    """
    expected = torch.as_tensor(expected)
    expect_shape(received, expected.shape, what)
    got = received.detach().cpu().to(torch.float64)
    want = expected.cpu().to(torch.float64)
    if not torch.allclose(got, want, rtol=rtol, atol=atol):
        diff = (got - want).abs().nan_to_num(nan=float("inf"))
        worst = torch.unravel_index(diff.argmax(), diff.shape) if diff.dim() else ()
        at = f" at index {[int(i) for i in worst]}" if worst else ""
        raise AssertionError(f"{what}: expected {describe(expected)}, received {describe(received)} "
                             f"(largest difference {diff.max().item():.4g}{at}: expected "
                             f"{want[worst].item():.6g}, received {got[worst].item():.6g})")


def expect_equal(received, expected, what: str) -> None:
    """Fail unless `received == expected` for plain values (strings, numbers, lists, types)."""
    if type(received) is not type(expected) or received != expected:
        raise AssertionError(f"{what}: expected {describe(expected)}, received {describe(received)}")


def normal_answer(text: str) -> str:
    """A written answer as every check compares it: lower case, no leading article, no spaces
    ("A Data set" and "dataset" are the same answer)."""
    words = text.lower().split()
    if len(words) > 1 and words[0] in ("a", "an", "the"):
        words = words[1:]
    return "".join(words)


def expect_one_of(received, options, what: str) -> None:
    """Fail unless `received` is a string naming one of `options` (compared by `normal_answer`)."""
    shown = ", ".join(f'"{o}"' for o in options)
    if not isinstance(received, str):
        raise AssertionError(f"{what}: expected a str, one of {shown}, received {type(received).__name__} {describe(received)}")
    if normal_answer(received) not in {normal_answer(o) for o in options}:
        raise AssertionError(f"{what}: expected one of {shown}, received {received!r}")


def expect_raises(error_types, fn, *args, what: str, **kwargs) -> None:
    """Fail unless `fn(*args, **kwargs)` raises one of `error_types`."""
    try:
        value = fn(*args, **kwargs)
    except error_types:
        return
    except Exception as e:
        message = " ".join(str(e).split())
        received = f"{type(e).__name__}: {message}" if message else type(e).__name__
        raise AssertionError(f"{what}: expected {_names(error_types)}, received {received}") from None
    raise AssertionError(f"{what}: expected {_names(error_types)}, received no error and the return value "
                         f"{describe(value)}")


def _names(error_types) -> str:
    types = error_types if isinstance(error_types, tuple) else (error_types,)
    return " or ".join(t.__name__ for t in types)

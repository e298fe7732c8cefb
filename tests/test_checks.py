"""Messages of the public checks (workbook.checks): one line, what was expected and what came back."""
import pytest
import torch

from workbook.checks import describe, expect_close, expect_equal, expect_raises, expect_shape


def failure(fn, *args, **kwargs) -> str:
    with pytest.raises(AssertionError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message, f"the message spans several lines: {message!r}"
    return message


def test_equal_names_types_by_name():
    assert failure(expect_equal, int, str, "type(answer)") == "type(answer): expected str, received int"
    assert failure(expect_equal, "B", "b", "letter") == "letter: expected 'b', received 'B'"
    assert failure(expect_equal, 1.0, 1, "count") == "count: expected 1, received 1.0"   # a float is not an int
    expect_equal([1, 2], [1, 2], "list")


def test_close_points_at_the_largest_difference():
    received = torch.tensor([[0.0, 1.0], [2.0, 3.5]])
    message = failure(expect_close, received, [[0.0, 1.0], [2.0, 3.0]], "normalize(x)")
    assert message.startswith("normalize(x): expected tensor [0, 1, 2, 3] (shape [2, 2], torch.float32, cpu), "
                              "received tensor [0, 1, 2, 3.5]")
    assert message.endswith("(largest difference 0.5 at index [1, 1]: expected 3, received 3.5)")
    assert "inf" in failure(expect_close, torch.tensor([float("nan"), 1.0]), [0.0, 1.0], "nan")
    assert "largest difference 1" in failure(expect_close, torch.tensor(2.0), 1.0, "scalar")
    expect_close(torch.tensor([1.0, 2.0]), [1.0, 2.0 + 1e-7], "close enough")


def test_shape_and_type_mismatch():
    assert failure(expect_close, torch.zeros(2, 3), torch.zeros(3, 2), "x") == \
        "x: expected shape [3, 2], received shape [2, 3]"
    assert failure(expect_shape, [1, 2], [2], "x") == "x: expected a torch.Tensor of shape [2], received [1, 2]"


def test_raises_reports_what_happened_instead():
    def returns(x):
        return x

    def wrong_error(x):
        raise KeyError("line one\nline two")

    assert failure(expect_raises, ValueError, returns, 3, what="f(3)") == \
        "f(3): expected ValueError, received no error and the return value 3"
    assert failure(expect_raises, (ValueError, TypeError), wrong_error, 3, what="f(3)") == \
        "f(3): expected ValueError or TypeError, received KeyError: 'line one\\nline two'"
    expect_raises(ValueError, int, "x", what="int('x')")


def test_describe_is_one_short_line():
    assert describe(torch.zeros(2, 2, 2)).endswith(", ...] (shape [2, 2, 2], torch.float32, cpu)")
    long = describe([torch.arange(4).reshape(2, 2)] * 20)
    assert "\n" not in long and len(long) == 120 and long.endswith("...")

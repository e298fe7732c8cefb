"""Rubric items of the normalization notebook (02_normalization)."""
import torch

from autograder.rubric.core import Case, RubricItem, answer_equals, judge_tensors, tensor_arg_label
from autograder.reference import normalization as ref
from workbook.recording_format import one_shot

# A colour cast far from 0/1, as in the embedded data set: the statistics matter.
_OFFSET = torch.tensor([0.6, 0.35, 0.2])
_SCALE = torch.tensor([0.12, 0.2, 0.05])


def _images(g: torch.Generator, shape, dtype=torch.float32, offset=None, scale=None) -> torch.Tensor:
    n_channels = shape[1]  # at most 3 here
    offset = (_OFFSET if offset is None else offset)[:n_channels]
    scale = (_SCALE if scale is None else scale)[:n_channels]
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    return (x * scale[None, :, None, None].double() + offset[None, :, None, None].double()).to(dtype)


def _x_case(x: torch.Tensor, **kw) -> Case:
    return Case(args=(x,), label=tensor_arg_label("x", x), **kw)


def stats_value_cases(g: torch.Generator) -> list[Case]:
    # [3, 3, 5, 3]: batch, channels and width all equal, so guessing the channel axis by its size fails.
    shapes = [([4, 3, 9, 7], torch.float32), ([1, 3, 5, 5], torch.float32), ([3, 2, 4, 6], torch.float64),
              ([2, 1, 8, 8], torch.float32), ([6, 3, 16, 12], torch.float32), ([3, 3, 5, 3], torch.float32)]
    return [_x_case(_images(g, s, d)) for s, d in shapes]


def stats_error_cases(g: torch.Generator) -> list[Case]:
    return [
        _x_case(_images(g, [1, 3, 8, 8])[0], raises=(ValueError,)),
        _x_case(_images(g, [2, 3, 8, 8])[None], raises=(ValueError,)),
        _x_case(torch.randint(0, 256, (2, 3, 4, 4), generator=g, dtype=torch.uint8), raises=(TypeError,)),
        Case(args=([[0.5, 0.25]],), label="x: a Python list, not a tensor", raises=(TypeError,)),
    ]


def normalize_value_cases(g: torch.Generator) -> list[Case]:
    x = _images(g, [4, 3, 8, 8])
    x64 = _images(g, [2, 2, 5, 5], torch.float64)
    single = _images(g, [1, 3, 6, 4])[0]
    # Sides equal to the channel count: a function that guesses the channel axis by its size picks the
    # batch, height or width axis here.
    cube = _images(g, [3, 3, 5, 3])
    single_cube = _images(g, [1, 3, 3, 4])[0]
    mean, std = ref.channel_stats(x)
    return [
        Case(args=(x, mean, std), label=f"{tensor_arg_label('x', x)}, mean and std as tensors"),
        Case(args=(x, [0.6, 0.35, 0.2], [0.12, 0.2, 0.05]), label=f"{tensor_arg_label('x', x)}, mean and std as lists"),
        Case(args=(x64, [0.5, 0.1], [0.25, 2.0]), label=f"{tensor_arg_label('x', x64)}, two channels"),
        Case(args=(single, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
             label=f"{tensor_arg_label('x', single)} (one image), ImageNet statistics"),
        Case(args=(cube, [0.6, 0.35, 0.2], [0.12, 0.2, 0.05]),
             label=f"{tensor_arg_label('x', cube)} (batch, channels and width all 3)"),
        Case(args=(single_cube, [0.6, 0.35, 0.2], [0.12, 0.2, 0.05]),
             label=f"{tensor_arg_label('x', single_cube)} (one image, height 3 like the channels)"),
    ]


def normalize_error_cases(g: torch.Generator) -> list[Case]:
    x = _images(g, [2, 3, 4, 4])
    label = tensor_arg_label("x", x)
    return [
        Case(args=(x, [0.5, 0.5], [0.2, 0.2]), label=f"{label}, two means and stds for three channels", raises=(ValueError,)),
        Case(args=(x, [0.5, 0.5, 0.5], [0.2, 0.0, 0.2]), label=f"{label}, a zero std", raises=(ValueError,)),
        Case(args=(x, [0.5, 0.5, 0.5], [0.2, -0.1, 0.2]), label=f"{label}, a negative std", raises=(ValueError,)),
    ]


def _batches_label(batches: list, kind: str) -> str:
    sizes = [list((b[0] if isinstance(b, tuple) else b).shape) for b in batches]
    return f"{len(batches)} {kind} of shapes {sizes}"


def streaming_value_cases(g: torch.Generator) -> list[Case]:
    labelled = [(_images(g, [n, 3, 6, 6]), torch.randint(0, 10, (n,), generator=g)) for n in (5, 5, 3)]
    plain = [_images(g, [1, 3, h, w]) for h, w in ((7, 5), (4, 9), (6, 6), (8, 3))]
    doubles = [_images(g, [4, 2, 5, 5], torch.float64) for _ in range(3)]
    return [
        Case(args=(labelled,), label=_batches_label(labelled, "(x, y) batches in a list")),
        Case(args=(one_shot(plain),), label=_batches_label(plain, "images of different sizes from a one-shot iterator")),
        Case(args=(doubles,), label=_batches_label(doubles, "float64 batches")),
        Case(args=(labelled[:1],), label=_batches_label(labelled[:1], "(x, y) batch in a list")),
    ]


def streaming_stable_cases(g: torch.Generator) -> list[Case]:
    # Mean 300, std 0.05 in float32: E[x^2] - E[x]^2 in float32 loses every significant digit.
    offset, scale = torch.full((3,), 300.0), torch.full((3,), 0.05)
    batches = [_images(g, [8, 3, 16, 16], offset=offset, scale=scale) for _ in range(20)]
    return [Case(args=(batches,), label=_batches_label(batches[:1], "float32 batches") + " x20, mean 300 and std 0.05")]


def streaming_error_cases(g: torch.Generator) -> list[Case]:
    return [Case(args=([],), label="an empty list of batches", raises=(ValueError,))]


def _expected_stats(case: Case):
    return ref.channel_stats(case.args[0])


def _expected_streaming(case: Case):
    batches = case.args[0]
    items = batches["items"] if isinstance(batches, dict) else batches
    return ref.streaming_channel_stats(items)


ITEMS = [
    RubricItem("channel_stats_values", "channel_stats returns the per-channel mean and population std", "channel_stats",
          make_cases=stats_value_cases, expected=_expected_stats, judge_case=judge_tensors("mean", "std"),
          exercise="channel_stats"),
    RubricItem("channel_stats_errors", "channel_stats rejects tensors that are not float [N, C, H, W]", "channel_stats",
          make_cases=stats_error_cases, exercise="channel_stats"),
    RubricItem("normalize_values", "normalize subtracts the mean and divides by the std of each channel", "normalize",
          make_cases=normalize_value_cases, expected=lambda c: ref.normalize(*c.args),
          judge_case=judge_tensors("normalized x"), exercise="normalize"),
    RubricItem("normalize_errors", "normalize rejects statistics that do not fit the channels", "normalize",
          make_cases=normalize_error_cases, exercise="normalize"),
    RubricItem("streaming_stats_values", "streaming_channel_stats equals the one-shot statistics of all batches", "streaming_channel_stats",
          make_cases=streaming_value_cases, expected=_expected_streaming, judge_case=judge_tensors("mean", "std"),
          exercise="streaming_channel_stats"),
    RubricItem("streaming_stats_stable", "streaming_channel_stats stays accurate when the mean is large", "streaming_channel_stats",
          make_cases=streaming_stable_cases, expected=_expected_streaming,
          judge_case=judge_tensors("mean", "std", rtol=1e-3, atol=1e-4), exercise="streaming_channel_stats"),
    RubricItem("streaming_stats_errors", "streaming_channel_stats rejects an empty loader", "streaming_channel_stats",
          make_cases=streaming_error_cases, exercise="streaming_channel_stats"),
    RubricItem("fastai_setup_batches", "fastai's Normalize() without statistics estimates them from one batch",
          value_answer=answer_equals(1, "a number of batches"), exercise="fastai_setup_batches"),
]

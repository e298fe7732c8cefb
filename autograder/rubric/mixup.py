"""Rubric items of the Mixup notebook (05_mixup).

`sample_lam` and `rand_box` draw from a `torch.Generator`, which a recording cannot carry. Their
hidden test cells record ``seeded(fn)`` (workbook.seeded): the grader sends a seed and a number of
repeats, the kernel makes the generators and returns two lists of draws from the same seed. Draws
cannot be compared with the reference value by value (any correct sampler may consume the generator
differently), so these rubric items test the law of the draws instead: a Kolmogorov-Smirnov distance to
Beta(alpha, alpha) (scipy's), the box sides and clipping, where the box centres fall, and that the
same seed gives the same draws (the global generator must not be used). Their targets name
`SEEDED_TARGET`; tests/test_mutants.py calls them through the same wrapper.

The Q8 answer is the text written after ``cbs=``, a string: the seed student's ``cbs=mixup`` would
raise NameError in a cell, which leaves nothing for the judge to explain.
"""
import ast
import math

import scipy.stats
import torch

from autograder.rubric.core import Case, RubricItem, compare_tensor, describe_received, inputs_unchanged, judge_tensors, tensor_arg_label
from autograder.reference import mixup as ref
from workbook.recording_format import MALFORMED, RecordedTensor

__all__ = ["ITEMS", "SEEDED_TARGETS", "q8_answer"]

SEEDED_TARGETS = {"sample_lam": "sample_lam, called through workbook.seeded.seeded",
                  "rand_box": "rand_box, called through workbook.seeded.seeded"}
KS_LIMIT = 0.025      # KS distance for 10,000-20,000 draws: exceeded by a right sampler with p < 1e-5


# ------------------------------------------------------------------------------------ sample_lam
def _lam_case(alpha, n, g, repeats=2, **kwargs) -> Case:
    seed = int(torch.randint(0, 2**31, (1,), generator=g))
    extra = "".join(f", {k}={v}" for k, v in kwargs.items())
    return Case(args=(alpha, n, seed, repeats), kwargs=kwargs,
                label=f"alpha={alpha}, n={n}{extra}, a generator seeded with {seed} ({repeats} calls)")


def lam_value_cases(g: torch.Generator) -> list[Case]:
    return [_lam_case(0.4, 20000, g), _lam_case(1.0, 10000, g), _lam_case(2.0, 10000, g),
            _lam_case(0.1, 20000, g, repeats=1, dtype=torch.float64), _lam_case(0.4, 3, g), _lam_case(0.5, 1, g)]


def lam_error_cases(g: torch.Generator) -> list[Case]:
    return [Case(args=(0.0, 5, 0, 1), label="alpha=0.0 (Beta needs alpha > 0)", raises=(ValueError,)),
            Case(args=(-0.4, 5, 0, 1), label="alpha=-0.4", raises=(ValueError,)),
            Case(args=(0.4, -1, 0, 1), label="n=-1", raises=(ValueError,)),
            Case(args=(0.4, 2.5, 0, 1), label="n=2.5 (not an int)", raises=(TypeError,))]


def _ks_distance(values: torch.Tensor, alpha: float) -> float:
    return float(scipy.stats.kstest(values.double().numpy(), scipy.stats.beta(alpha, alpha).cdf).statistic)


def judge_lam(case: Case, expected, received, after, device: str) -> str | None:
    alpha, n, _, repeats = case.args
    dtype = case.kwargs.get("dtype", torch.float32)
    if not (isinstance(received, tuple) and len(received) == 2 and all(isinstance(r, list) for r in received)):
        return f"with {case.label}: {MALFORMED}"
    first, again = received
    for got in first + again:
        if not isinstance(got, RecordedTensor):
            return f"with {case.label}: expected a tensor of shape [{n}], received {describe_received(got)}"
        if list(got.data.shape) != [n]:
            return f"with {case.label}: expected shape [{n}] (one lam per sample), received shape {list(got.data.shape)}"
        if got.data.dtype != dtype:
            return f"with {case.label}: expected dtype {dtype}, received {got.data.dtype}"
        if n and not (float(got.data.min()) >= 0 and float(got.data.max()) <= 1):
            return f"with {case.label}: lam must lie in [0, 1], received values from {float(got.data.min()):.4g} " \
                   f"to {float(got.data.max()):.4g}"
    if any(not torch.equal(a.data, b.data) for a, b in zip(first, again)):
        return (f"with {case.label}: two generators with the same seed gave different lam; draw only from the "
                f"generator argument (torch.distributions.Beta uses the global generator)")
    if repeats > 1 and n > 1 and torch.equal(first[0].data, first[1].data):
        return f"with {case.label}: two calls with the same generator returned the same lam; each call must draw anew"
    if n >= 1000:
        distance = _ks_distance(first[0].data, alpha)
        if distance > KS_LIMIT:
            values = first[0].data.double()
            return (f"with {case.label}: the draws do not follow Beta({alpha}, {alpha}): Kolmogorov-Smirnov distance "
                    f"{distance:.3f} (a right sampler stays below {KS_LIMIT}); their mean is {values.mean():.3f} "
                    f"(expected 0.5), their share below 0.5 is {(values < 0.5).double().mean():.3f} (expected 0.5)")
    return None


# ----------------------------------------------------------------------------------------- mixup
def _images(g: torch.Generator, shape, dtype=torch.float32) -> torch.Tensor:
    return torch.rand(shape, generator=g, dtype=torch.float64).to(dtype)


def _perm(g: torch.Generator, n: int) -> torch.Tensor:
    perm = torch.randperm(n, generator=g)
    if n > 1 and torch.equal(perm, torch.arange(n)):       # never the identity: it would hide the partner
        perm = perm.roll(1)
    return perm


def _lam(g: torch.Generator, n: int, dtype=torch.float32) -> torch.Tensor:
    lam = torch.rand(n, generator=g, dtype=torch.float64)
    if n >= 4:
        lam[:2] = torch.tensor([0.0, 1.0], dtype=torch.float64)    # the ends of [0, 1]
    return lam.to(dtype)


def _mix_case(x, y, lam, perm, n_classes=None) -> Case:
    args = (x, y, lam, perm) if n_classes is None else (x, y, lam, perm, n_classes)
    label = (f"{tensor_arg_label('x', x)}, {tensor_arg_label('y', y)}, {tensor_arg_label('lam', lam)}, "
             f"perm={perm.tolist()}" + ("" if n_classes is None else f", n_classes={n_classes}"))
    return Case(args=args, label=label)


def mixup_value_cases(g: torch.Generator) -> list[Case]:
    cases = []
    for n, shape, k, dtype in ((8, (3, 5, 6), 10, torch.float32), (6, (3, 4, 6), 4, torch.float32),
                               (5, (2, 3, 3), 3, torch.float64), (4, (7,), 5, torch.float32)):
        x = _images(g, (n, *shape), dtype)
        y = torch.randint(0, k, (n,), generator=g)
        cases.append(_mix_case(x, y, _lam(g, n, dtype), _perm(g, n), k))
    # float targets: one-hot, and label-smoothed rows (mixed as given)
    x, y = _images(g, (6, 3, 4, 4)), torch.randint(0, 5, (6,), generator=g)
    cases.append(_mix_case(x, torch.nn.functional.one_hot(y, 5).float(), _lam(g, 6), _perm(g, 6)))
    smoothed = torch.nn.functional.one_hot(y, 5).double() * 0.9 + 0.02
    cases.append(_mix_case(x.double(), smoothed, _lam(g, 6, torch.float64), _perm(g, 6)))
    return cases


def mixup_error_cases(g: torch.Generator) -> list[Case]:
    x, y = _images(g, (4, 3, 5, 5)), torch.randint(0, 6, (4,), generator=g)
    lam, perm = _lam(g, 4), _perm(g, 4)
    base = f"{tensor_arg_label('x', x)}, y={y.tolist()}, n_classes=6"
    return [
        Case(args=(x, y, torch.tensor([0.5, 1.5, 0.2, 0.3]), perm, 6), label=f"{base}, lam with 1.5", raises=(ValueError,)),
        Case(args=(x, y, torch.tensor([0.5, -0.1, 0.2, 0.3]), perm, 6), label=f"{base}, lam with -0.1", raises=(ValueError,)),
        Case(args=(x, y, lam[:3], perm, 6), label=f"{base}, 3 values of lam for 4 images", raises=(ValueError,)),
        Case(args=(x, y, lam, perm[:3], 6), label=f"{base}, perm of length 3 for 4 images", raises=(ValueError,)),
        Case(args=(x, y, lam, torch.tensor([1, 1, 0, 2]), 6), label=f"{base}, perm=[1, 1, 0, 2] (not a permutation)",
             raises=(ValueError,)),
        Case(args=(x, y[:3], lam, perm, 6), label=f"{tensor_arg_label('x', x)}, 3 labels for 4 images", raises=(ValueError,)),
    ]


def _pick(index: int, name: str, rtol: float = 1e-5, atol: float = 1e-6):
    """A judge of one element of the returned (images, targets) pair."""
    def judge_case(case: Case, expected, received, after, device: str) -> str | None:
        if not isinstance(received, tuple) or len(received) != 2:
            return f"with {case.label}: expected a tuple (mixed images, mixed targets), received {describe_received(received)}"
        return compare_tensor(expected[index], received[index], f"with {case.label}, {name}", device=device,
                              rtol=rtol, atol=atol)
    return judge_case


def judge_unchanged(case: Case, expected, received, after, device: str) -> str | None:
    return inputs_unchanged(case, after)


def mixup_loss_cases(g: torch.Generator) -> list[Case]:
    cases = []
    for n, k, dtype, reduction in ((8, 10, torch.float32, "mean"), (6, 5, torch.float64, "mean"),
                                   (7, 4, torch.float32, "sum"), (5, 3, torch.float64, "none")):
        logits = (torch.randn(n, k, generator=g, dtype=torch.float64) * 3).to(dtype)
        y, lam, perm = torch.randint(0, k, (n,), generator=g), _lam(g, n, dtype), _perm(g, n)
        cases.append(Case(args=(logits, y, lam, perm), kwargs={"reduction": reduction},
                          label=f"{tensor_arg_label('logits', logits)}, y={y.tolist()}, lam={[round(v, 3) for v in lam.tolist()]}, "
                                f"perm={perm.tolist()}, reduction={reduction!r}"))
    return cases


# -------------------------------------------------------------------------------------- rand_box
def _box_case(h, w, lam, g, repeats=400) -> Case:
    seed = int(torch.randint(0, 2**31, (1,), generator=g))
    return Case(args=(h, w, lam, seed, repeats),
                label=f"h={h}, w={w}, lam={lam}, a generator seeded with {seed} ({repeats} calls)")


def box_cases(g: torch.Generator) -> list[Case]:
    return [_box_case(20, 60, 0.75, g), _box_case(48, 16, 0.5, g), _box_case(31, 31, 0.36, g),
            _box_case(10, 24, 0.0, g, repeats=50), _box_case(12, 9, 1.0, g, repeats=20)]


def _as_box(value):
    if isinstance(value, RecordedTensor) and value.data.numel() == 4 and not value.data.is_floating_point():
        return [int(v) for v in value.data.flatten().tolist()]
    if isinstance(value, (tuple, list)) and len(value) == 4:
        out = []
        for v in value:
            if isinstance(v, RecordedTensor) and v.data.numel() == 1 and not v.data.is_floating_point():
                v = int(v.data)
            if type(v) is not int:
                return None
            out.append(v)
        return out
    return None


def judge_box(case: Case, expected, received, after, device: str) -> str | None:
    h, w, lam, _, repeats = case.args
    if not (isinstance(received, tuple) and len(received) == 2 and all(isinstance(r, list) for r in received)):
        return f"with {case.label}: {MALFORMED}"
    first, again = received
    boxes = [_as_box(b) for b in first]
    for raw, box in zip(first, boxes):
        if box is None:
            return f"with {case.label}: expected a tuple of four ints (top, left, bottom, right), received {describe_received(raw)}"
    if [_as_box(b) for b in again] != boxes:
        return (f"with {case.label}: two generators with the same seed gave different boxes; draw the centre only "
                f"from the generator argument")
    cut_h, cut_w = round(h * math.sqrt(1 - lam)), round(w * math.sqrt(1 - lam))
    for top, left, bottom, right in boxes:
        box = (top, left, bottom, right)
        if not (0 <= top <= bottom <= h and 0 <= left <= right <= w):
            return f"with {case.label}: the box {box} does not lie inside the {h} x {w} image (clip it)"
        height, width = bottom - top, right - left
        if height > cut_h + 1 or width > cut_w + 1:
            return (f"with {case.label}: the box {box} is {height} x {width} pixels, larger than the "
                    f"{cut_h} x {cut_w} (h * sqrt(1 - lam) by w * sqrt(1 - lam)) it should be before clipping")
        if (0 < top and bottom < h and abs(height - cut_h) > 1) or (0 < left and right < w and abs(width - cut_w) > 1):
            return (f"with {case.label}: the box {box} does not touch the border, so it was not clipped, but it is "
                    f"{height} x {width} pixels; expected {cut_h} x {cut_w} (h * sqrt(1 - lam) by w * sqrt(1 - lam))")
    if repeats >= 100 and cut_h < h:
        # With the centre row uniform on 0..h-1, the box reaches the top edge for about (cut_h / 2 + 1) of
        # the h rows; off-by-one conventions move this by 1 / h, a centre kept away from the edges by far more.
        share = sum(b[0] == 0 for b in boxes) / len(boxes)
        want = (cut_h // 2 + 1) / h
        if abs(share - want) > 0.1 + 1.5 / h:
            return (f"with {case.label}: {share:.0%} of the boxes reach the top edge, expected about {want:.0%}; "
                    f"draw the centre uniformly over the whole image (the box may then stick out, and is clipped)")
    return None


# ---------------------------------------------------------------------------------------- cutmix
def cutmix_value_cases(g: torch.Generator) -> list[Case]:
    cases = []
    specs = [((8, 3, 10, 12), 10, 0.6, (0, 0, 4, 5)),         # clipped at the top-left corner
             ((6, 3, 8, 8), 4, 0.75, (2, 3, 6, 7)),           # inside the image
             ((5, 2, 9, 7), 3, 0.3, (3, 1, 9, 7)),            # clipped at the bottom and right
             ((4, 3, 6, 6), 5, 1.0, (3, 3, 3, 3)),            # lam = 1: an empty box
             ((4, 3, 6, 6), 5, 0.0, (0, 0, 6, 6))]            # lam = 0: the whole partner image
    for shape, k, lam, box in specs:
        n = shape[0]
        x, y = _images(g, shape), torch.randint(0, k, (n,), generator=g)
        perm = _perm(g, n)
        cases.append(Case(args=(x, y, lam, perm, box, k),
                          label=f"{tensor_arg_label('x', x)}, y={y.tolist()}, lam={lam}, perm={perm.tolist()}, "
                                f"box={box}, n_classes={k}"))
    x, y = _images(g, (5, 3, 7, 9), torch.float64), torch.randint(0, 4, (5,), generator=g)
    one_hot, perm = torch.nn.functional.one_hot(y, 4).double(), _perm(g, 5)
    cases.append(Case(args=(x, one_hot, 0.5, perm, (0, 6, 5, 9)),
                      label=f"{tensor_arg_label('x', x)}, one-hot {tensor_arg_label('y', one_hot)}, lam=0.5, "
                            f"perm={perm.tolist()}, box=(0, 6, 5, 9)"))
    return cases


def cutmix_error_cases(g: torch.Generator) -> list[Case]:
    x, y = _images(g, (4, 3, 6, 8)), torch.randint(0, 5, (4,), generator=g)
    perm = _perm(g, 4)
    base = f"{tensor_arg_label('x', x)}, y={y.tolist()}, n_classes=5"
    return [
        Case(args=(x, y, 0.5, perm, (0, 0, 7, 4), 5), label=f"{base}, box=(0, 0, 7, 4) (7 rows > 6)", raises=(ValueError,)),
        Case(args=(x, y, 0.5, perm, (4, 0, 2, 4), 5), label=f"{base}, box=(4, 0, 2, 4) (bottom above top)",
             raises=(ValueError,)),
        Case(args=(x, y, 1.5, perm, (0, 0, 2, 2), 5), label=f"{base}, lam=1.5", raises=(ValueError,)),
        Case(args=(x, y, 0.5, torch.tensor([0, 1, 2]), (0, 0, 2, 2), 5), label=f"{base}, perm of length 3",
             raises=(ValueError,)),
    ]


# ------------------------------------------------------------------------------------- Q8 answer
_NAMES_THAT_ARE_NOT = {"mixup": "`mixup` is not a name fastai defines",
                       "Mixup": "`Mixup` is not a name fastai defines (Python names are case-sensitive)",
                       "MixUpCallback": "`MixUpCallback` is not a name fastai 2 defines (it was fastai 1's)"}


def _callee(node) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _judge_item(node) -> tuple[bool, str | None]:
    """(is a MixUp callback, reason it is wrong or None) for one element given to cbs."""
    if isinstance(node, ast.Call):
        name = _callee(node.func)
        if name == "MixUp":
            for arg in list(node.args) + [k.value for k in node.keywords]:
                if not (isinstance(arg, ast.Constant) and type(arg.value) in (int, float) and arg.value > 0):
                    return True, "MixUp takes one argument, alpha, a positive number (e.g. MixUp(0.4))"
            if len(node.args) > 1 or any(k.arg != "alpha" for k in node.keywords):
                return True, "MixUp takes one argument, alpha (e.g. MixUp(alpha=0.4))"
            return True, None
        if name in _NAMES_THAT_ARE_NOT:
            return False, f"{_NAMES_THAT_ARE_NOT[name]}: the callback class is `MixUp`"
        if name == "CutMix":
            return False, "CutMix() is a different augmentation (it pastes a box); the question asks for Mixup"
        return False, None
    name = _callee(node)
    if name == "MixUp":
        return True, None          # fastai's Learner.add_cb instantiates a class it is given: MixUp == MixUp()
    if name in _NAMES_THAT_ARE_NOT:
        return False, f"{_NAMES_THAT_ARE_NOT[name]}: the callback class is `MixUp`, used as cbs=MixUp()"
    return False, None


def q8_answer(received) -> str | None:
    """Judge the text after `cbs=`; the reasons say what fastai would do with a wrong one."""
    if not isinstance(received, str):
        return f"expected the answer as a string (the code after cbs=, e.g. \"...\"), received {describe_received(received)}"
    text = received.strip()
    if text.startswith("cbs") and "=" in text:
        text = text.split("=", 1)[1].strip()
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError:
        return f"the answer {received.strip()!r} is not a Python expression"
    items = tree.elts if isinstance(tree, (ast.List, ast.Tuple)) else [tree]
    found, reasons = 0, []
    for item in items:
        is_mixup, reason = _judge_item(item)
        found += is_mixup
        if reason:
            reasons.append(reason)
    if reasons:
        return f"the answer {received.strip()!r} does not add Mixup: " + "; ".join(reasons)
    if found == 0:
        return f"the answer {received.strip()!r} does not add fastai's Mixup callback; the class is `MixUp`"
    if found > 1:
        return f"the answer {received.strip()!r} adds Mixup {found} times; once is enough"
    return None


def _expected_mixup(case: Case):
    return ref.mixup(*case.args, **case.kwargs)


def _expected_cutmix(case: Case):
    return ref.cutmix(*case.args, **case.kwargs)


ITEMS = [
    RubricItem("sample_lam_values", "sample_lam draws n values of Beta(alpha, alpha) from the generator it is given",
          SEEDED_TARGETS["sample_lam"], make_cases=lam_value_cases, expected=lambda case: None, judge_case=judge_lam,
          exercise="sample_lam"),
    RubricItem("sample_lam_errors", "sample_lam rejects alpha <= 0 and an n that is negative or not an int",
          SEEDED_TARGETS["sample_lam"], make_cases=lam_error_cases, exercise="sample_lam"),
    RubricItem("mixup_images", "mixup returns lam_i * x_i + (1 - lam_i) * x_perm[i], lam broadcast over each sample",
          "mixup", make_cases=mixup_value_cases, expected=_expected_mixup, judge_case=_pick(0, "mixed images"),
          exercise="mixup"),
    RubricItem("mixup_targets", "mixup returns the targets mixed with the same lam and partner as the images",
          "mixup", make_cases=mixup_value_cases, expected=_expected_mixup, judge_case=_pick(1, "mixed targets"),
          exercise="mixup"),
    RubricItem("mixup_inputs_unchanged", "mixup leaves its inputs unchanged", "mixup", make_cases=mixup_value_cases,
          expected=lambda case: None, judge_case=judge_unchanged, exercise="mixup"),
    RubricItem("mixup_errors", "mixup rejects lam outside [0, 1], lam, perm or labels of the wrong length, and a perm "
          "that is not a permutation", "mixup", make_cases=mixup_error_cases, exercise="mixup"),
    RubricItem("mixup_loss_values", "mixup_loss is lam * CE(z, y_i) + (1 - lam) * CE(z, y_perm[i]), reduced like torch",
          "mixup_loss", make_cases=mixup_loss_cases, expected=lambda case: ref.mixup_loss(*case.args, **case.kwargs),
          judge_case=judge_tensors("loss", rtol=1e-5, atol=1e-6), exercise="mixup_loss"),
    RubricItem("rand_box_values", "rand_box draws a box of sides sqrt(1 - lam) * (h, w) with a uniform centre, clipped "
          "to the image", SEEDED_TARGETS["rand_box"], make_cases=box_cases, expected=lambda case: None,
          judge_case=judge_box, exercise="rand_box"),
    RubricItem("cutmix_values", "cutmix pastes the partner's box and mixes the targets by the area actually kept, "
          "leaving its inputs unchanged", "cutmix", make_cases=cutmix_value_cases, expected=_expected_cutmix,
          judge_case=judge_tensors("mixed images", "mixed targets", rtol=1e-5, atol=1e-6), exercise="cutmix"),
    RubricItem("cutmix_errors", "cutmix rejects a box outside the image, lam outside [0, 1] and a perm of the wrong length",
          "cutmix", make_cases=cutmix_error_cases, exercise="cutmix"),
    RubricItem("q8_cbs", "Mixup is added to a fastai Learner with cbs=MixUp()", value_answer=q8_answer, exercise="q8_cbs"),
]

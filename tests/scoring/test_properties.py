"""Property tests: the RLE path equals the dense path; RLE and PNG submissions score the same."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pycocotools import mask as cocomask

from scoring import evaluate, load_ground_truth, rle

from .conftest import write_gt, write_pred_json, write_pred_png
from .dense import evaluate_dense

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def expressions(draw):
    """A video (frames, size) with one object's GT masks and a predicted mask sequence."""
    h = draw(st.integers(1, 9))
    w = draw(st.integers(1, 9))
    n = draw(st.integers(1, 8))
    frames = [f"{5 * i:05d}" for i in range(n)]
    density = draw(st.sampled_from([0.05, 0.3, 0.7]))

    def masks(presence_p: float):
        out = {}
        for f in frames:
            if draw(st.floats(0, 1)) < presence_p:
                out[f] = draw(arrays(np.bool_, (h, w), elements=st.booleans().map(lambda b: b)))
                if draw(st.floats(0, 1)) < density:
                    out[f] = out[f] | draw(arrays(np.bool_, (h, w)))
        return out

    gt = masks(draw(st.floats(0.1, 1.0)))
    visible = [f for f, m in gt.items() if m.any()]
    if not visible:
        gt[frames[draw(st.integers(0, n - 1))]] = np.ones((h, w), dtype=bool)
    pred = masks(draw(st.floats(0.0, 1.0)))
    return frames, gt, pred


@given(expressions())
@SETTINGS
def test_it_matches_the_dense_implementation(case):
    frames, gt, pred = case
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_gt(root / "gt", {"v": {"split": "long", "frames": frames, "expressions": {"0": "1"}}}, {("v", "1"): gt})
        write_pred_json(root / "pred", "long", "v", "0", "1", pred)
        (row,) = evaluate(load_ground_truth(root / "gt"), root / "pred").expressions
        dense = evaluate_dense(root / "gt", root / "pred")[("long", "v", "0")]
    for metric, expected in dense.items():
        assert abs(row.scores.metric(metric) - expected) <= 1e-12, metric


@given(expressions())
@SETTINGS
def test_it_scores_rle_and_png_submissions_of_the_same_masks_identically(case):
    frames, gt, pred = case
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_gt(root / "gt", {"v": {"split": "short", "frames": frames, "expressions": {"0": "1"}}}, {("v", "1"): gt})
        truth = load_ground_truth(root / "gt")
        write_pred_json(root / "rle", "short", "v", "0", "1", pred)
        write_pred_png(root / "png", "short", "v", "0", pred)
        by_rle = evaluate(truth, root / "rle")
        if not pred:  # an expression folder with no PNG is no prediction: compare with "missing"
            assert by_rle.expressions[0].scores.n_pred == 0
            return
        by_png = evaluate(truth, root / "png")
    assert by_rle.expressions[0].scores == by_png.expressions[0].scores
    assert by_rle.as_dict() == by_png.as_dict()


@given(st.integers(1, 40), st.integers(1, 40), st.data())
@settings(max_examples=200, deadline=None)
def test_it_parses_counts_exactly_like_pycocotools(h, w, data):
    masks = data.draw(st.lists(arrays(np.uint8, (h, w), elements=st.integers(0, 1)), min_size=1, max_size=5))
    strings = [cocomask.encode(np.asfortranarray(m))["counts"].decode() for m in masks]
    parsed = rle.parse_counts(strings, [h * w] * len(masks))
    for i, m in enumerate(masks):
        runs = parsed.runs(i)
        assert int(parsed.areas[i]) == int(m.sum())
        # Re-encoding the parsed runs gives back the same string.
        assert rle.compress(runs, h, w) == strings[i]
        # The runs describe the mask in column-major order.
        flat = np.repeat(np.arange(runs.size) % 2, runs).astype(np.uint8)
        assert np.array_equal(flat.reshape((w, h)).T, m)


def coco_counts(s: str, pixels: int) -> list[int] | None:
    """pycocotools' rleFrString (maskApi.c) in plain Python: the counts it would decode, as unsigned
    32-bit numbers, or None for a string our checks must refuse (one it would read past the end of,
    a number longer than six characters, or runs that do not add up to `pixels`)."""
    counts: list[int] = []
    p = 0
    while p < len(s):
        x, k, more = 0, 0, True
        while more:
            if p >= len(s) or k == 6:
                return None
            c = ord(s[p]) - 48
            if not 0 <= c <= 63:
                return None
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x % 2**32)
    if not counts or any(c >= 2**31 for c in counts) or sum(counts) != pixels:
        return None
    return counts


@given(st.lists(st.text(alphabet=st.characters(min_codepoint=40, max_codepoint=115), max_size=12), min_size=1,
                max_size=5), st.integers(1, 300))
@settings(max_examples=400, deadline=None)
def test_it_accepts_exactly_the_strings_pycocotools_would_decode_and_decodes_them_alike(strings, pixels):
    expected = [coco_counts(s, pixels) for s in strings]
    try:
        parsed = rle.parse_counts(strings, pixels)
    except rle.RLEFormatError as exc:
        assert expected[exc.index] is None  # the mask it names is one pycocotools cannot decode safely
        return
    assert [parsed.runs(i).tolist() for i in range(len(strings))] == expected
    assert parsed.areas.tolist() == [sum(e[1::2]) for e in expected]  # type: ignore[index]


@given(arrays(np.bool_, st.tuples(st.integers(1, 12), st.integers(1, 12))), st.integers(0, 3))
@settings(max_examples=200, deadline=None)
def test_it_counts_intersections_exactly(mask, shift):
    other = np.roll(mask, shift, axis=1) | np.roll(mask, -shift, axis=0)
    masks = [mask, other, np.zeros_like(mask), np.ones_like(mask)]
    parsed = rle.parse_counts([rle.encode(m)["counts"] for m in masks], mask.size)
    a, b = [0, 1, 2, 3, 1, 0], [1, 0, 3, 0, 1, 3]
    assert rle.intersections(parsed, a, parsed, b).tolist() == [int((masks[i] & masks[j]).sum()) for i, j in zip(a, b)]


@given(st.lists(st.integers(0, 40), min_size=1, max_size=12), st.integers(0, 63), st.integers(0, 100),
       st.booleans())
@settings(max_examples=400, deadline=None)
def test_it_decodes_near_valid_strings_exactly_as_pycocotools_would(runs, character, where, mutate):
    pixels = sum(runs) or 1
    runs = runs if sum(runs) else [1]
    text = rle.compress(runs, 1, pixels)
    if mutate:  # one character changed: often still decodable, to other runs or another total
        i = where % len(text)
        text = text[:i] + chr(48 + character) + text[i + 1 :]
    expected = coco_counts(text, pixels)
    try:
        parsed = rle.parse_counts([text], pixels)
    except rle.RLEFormatError:
        assert expected is None
    else:
        assert parsed.runs(0).tolist() == expected

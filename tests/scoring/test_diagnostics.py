"""Egocentric traits, results by trait bucket, error types and timelines (scoring.diagnostics), by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from scoring import evaluate, load_ground_truth
from scoring.diagnostics import NONE_BUCKET, Traits, _bucketing, aligned, by_trait, errors, traits

from .conftest import box, write_gt, write_pred_json
from .frozen import GT, SUBMISSIONS

H, W = 4, 4
FRAMES = [f"{i:05d}" for i in range(10)]
BIG = box(H, W, 0, 2, 0, 2)  # 4 px: 25 % of the frame
SMALL = box(H, W, 0, 1, 0, 2)  # 2 px: 12.5 %


@pytest.fixture
def hand_gt(tmp_path: Path):
    videos = {
        "v": {"split": "short", "frames": FRAMES, "expressions": {"0": "1", "1": "2"}},
        "L--0": {"split": "medium", "frames": FRAMES[:6], "expressions": {"0": "1"}},
        "L": {"split": "long", "frames": FRAMES, "expressions": {"0": "1"}},
    }
    tracks = {
        # frames 2, 3, 4 and 7: two trajectories; IoU(2,3) = 1, IoU(3,4) = 2/4.
        ("v", "1"): {"00002": BIG, "00003": BIG, "00004": SMALL, "00007": SMALL},
        ("v", "2"): {"00009": BIG},  # once, at the end: absent from the first frames, no adjacent pair
        ("L", "1"): {"00000": BIG, "00001": BIG, "00008": BIG},
    }
    return load_ground_truth(write_gt(tmp_path / "gt", videos, tracks))


def test_each_trait_is_what_the_ground_truth_says_by_hand(hand_gt):
    found = {(e.split, e.video, e.exp_id): e for e in traits(hand_gt, k=5).expressions}
    first = found[("short", "v", "0")]
    assert first.presence == pytest.approx(100 * 4 / 10)
    assert first.trajectories == 2
    assert first.trajectory_length == pytest.approx(100 * (4 / 2) / 10)
    assert first.area == pytest.approx((25 + 25 + 12.5 + 12.5) / 4)
    assert first.adjacent_iou == pytest.approx(100 * (1 + 0.5) / 2)
    assert (first.frames, first.first_frames, first.cluster) == (10, True, "v")
    second = found[("short", "v", "1")]
    assert (second.presence, second.trajectories, second.adjacent_iou, second.first_frames) == (10.0, 1, None, False)
    clip = found[("medium", "L--0", "0")]  # the clip's own frames only: 0 and 1 of its six
    assert (clip.presence, clip.trajectories, clip.adjacent_iou, clip.cluster) == (
        pytest.approx(100 * 2 / 6), 1, 100.0, "L")
    assert found[("long", "L", "0")].trajectories == 2


def test_buckets_are_cut_at_the_tertiles_and_an_edge_belongs_to_the_lower_bucket():
    cut = _bucketing("presence", [10, 20, 30, 40, 50, 60], 5)
    # tertiles by linear interpolation: 20 + 2/3 × 10 and 40 + 1/3 × 10
    assert cut.edges == pytest.approx((26.666667, 43.333333))
    assert cut.labels == ("≤ 26.7", "26.7–43.3", "> 43.3")
    assert [cut.bucket(v) for v in (10, 26.666667, 30, 43.4, 60, None)] == [
        "≤ 26.7", "≤ 26.7", "26.7–43.3", "> 43.3", "> 43.3", NONE_BUCKET]


def test_counts_with_many_ties_get_fewer_buckets_with_whole_number_labels():
    cut = _bucketing("trajectories", [1, 1, 1, 1, 1, 1, 5], 5)
    # tertiles at positions 2 and 4 of the sorted seven: both 1 → one edge, two buckets
    assert cut.edges == (1.0,)
    assert cut.labels == ("≤ 1", "> 1")
    assert _bucketing("trajectories", [1, 1, 1, 1, 2, 5, 9], 5).labels == ("≤ 1", "2", "> 2")
    assert _bucketing("trajectories", [1, 2, 3, 4, 5, 6, 7], 5).labels == ("≤ 3", "4–5", "> 5")
    flags = _bucketing("first_frames", [True, False], 5)
    assert (flags.bucket(True), flags.bucket(False)) == ("visible in the first 5", "absent from the first 5")


def test_results_by_bucket_are_means_over_the_bucket_with_its_count(hand_gt):
    found = traits(hand_gt, k=5)
    # metric fractions per expression, in the traits' order (short v/0, short v/1, medium, long)
    values = np.array([[1.0, 0.5, 0.4, 0.2], [0.0, 0.9, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0], [0.5, 0.5, 0.5, 0.5]])
    result = {r.bucket: r for r in by_trait(found, values)["first_frames"]}
    absent = result["absent from the first 5"]  # only v/1 (its object appears at frame 9)
    visible = result["visible in the first 5"]
    assert (absent.n, visible.n) == (1, 3)
    assert visible.metrics["IoU_gold_pred"] == pytest.approx(100 * (0.2 + 1.0 + 0.5) / 3)
    assert absent.metrics["IoU_all"] == pytest.approx(90.0)
    adjacent = {r.bucket: r.n for r in by_trait(found, values)["adjacent_iou"]}
    assert adjacent[NONE_BUCKET] == 1 and sum(adjacent.values()) == 4


def test_the_traits_survive_their_json_form(hand_gt):
    found = traits(hand_gt)
    again = Traits.from_dict(json.loads(json.dumps(found.as_dict())))
    assert again == found


def test_error_types_and_the_timeline_of_the_metrics_md_hand_check(tmp_path):
    # N = 4; G = {1, 2}; P = {2, 3}; IoU(frame 2) = 0.5 — not below 0.5, so not a low-IoU hit.
    frames = ["00000", "00005", "00010", "00015"]
    write_gt(tmp_path / "gt", {"v": {"split": "short", "frames": frames, "expressions": {"0": "1", "1": "2"}}},
             {("v", "1"): {"00005": BIG, "00010": BIG}, ("v", "2"): {"00000": BIG, "00005": BIG}})
    write_pred_json(tmp_path / "p", "short", "v", "0", "1", {"00010": box(H, W, 0, 2, 0, 1), "00015": BIG})
    write_pred_json(tmp_path / "p", "short", "v", "1", "2", {"00000": box(H, W, 0, 1, 0, 1), "00005": BIG})
    evaluation = evaluate(load_ground_truth(tmp_path / "gt"), tmp_path / "p", timelines=True)
    first, second = evaluation.expressions
    assert first.timeline.as_dict() == {"n": 4, "gt": [[1, 3]], "pred": [[2, 4]], "hits": [[2, 0.5]]}
    assert json.dumps(first.timeline.as_dict()["hits"]) == "[[2, 0.5]]"  # positions stay whole numbers
    assert second.timeline.as_dict() == {"n": 4, "gt": [[0, 2]], "pred": [[0, 2]], "hits": [[0, 0.25], [1, 1.0]]}
    found = errors(evaluation.expressions)["short"].as_dict()
    assert {k: found[k] for k in ("expressions", "gt_frames", "pred_frames", "hits", "missed", "hallucinated",
                                  "low_iou")} == {"expressions": 2, "gt_frames": 4, "pred_frames": 4, "hits": 3,
                                                  "missed": 1, "hallucinated": 1, "low_iou": 1}
    assert found["low_iou_pct"] == pytest.approx(100 / 3)
    assert errors(evaluation.expressions)["overall"] == errors(evaluation.expressions)["short"]


def test_a_submission_aligned_to_the_traits_covers_every_scored_expression():
    gt = load_ground_truth(GT)
    found = traits(gt)
    evaluation = evaluate(gt, SUBMISSIONS["groundedsam2"], split="long")
    values, scored = aligned(found, evaluation.expressions)
    assert scored.sum() == len(evaluation.expressions) == evaluation.summaries["long"].n_expressions
    buckets = by_trait(found, values, scored)["presence"]
    assert sum(b.n for b in buckets) == scored.sum()
    # Weighted by counts, the buckets give back the split's mean.
    mean = sum(b.n * b.metrics["IoU_gold_pred"] for b in buckets) / scored.sum()
    assert mean == pytest.approx(evaluation.summaries["long"].IoU_gold_pred)


def test_the_frozen_ground_truths_trait_edges_are_frozen():
    cut = traits(load_ground_truth(GT)).as_dict()["traits"]
    assert cut["presence"]["edges"] == pytest.approx([17.823765, 21.955019])
    assert cut["first_frames"]["buckets"] == ["absent from the first 5", "visible in the first 5"]

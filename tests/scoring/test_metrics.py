"""The four metrics on hand-made cases; expected values are written as arithmetic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scoring import evaluate, load_ground_truth
from scoring.metrics import scores_from_ious, summarize

from .conftest import box, write_gt, write_pred_json

H, W = 4, 4
EMPTY = np.zeros((H, W), dtype=bool)
FRAMES = ["00000", "00005", "00010", "00015"]


def one_expression(tmp_path: Path, gt: dict, pred: dict | None, frames=FRAMES):
    """Score a single short-split expression; returns its ExpressionResult."""
    write_gt(tmp_path / "gt", {"v": {"split": "short", "frames": frames, "expressions": {"0": "1"}}}, {("v", "1"): gt})
    pred_dir = tmp_path / "pred"
    if pred is not None:
        write_pred_json(pred_dir, "short", "v", "0", "1", pred)
    else:  # a submission with some other expression only, so this one is missing
        write_pred_json(pred_dir, "short", "other", "0", "1", {})
    result = evaluate(load_ground_truth(tmp_path / "gt"), pred_dir)
    (row,) = result.expressions
    return row


def test_it_reproduces_the_metrics_md_hand_check(tmp_path):
    # GT non-empty on frames 1, 2; prediction on 2, 3; IoU(frame 2) = 2 px / 4 px = 0.5.
    gt = {"00005": box(H, W, 0, 2, 0, 2), "00010": box(H, W, 0, 2, 0, 2)}
    pred = {"00010": box(H, W, 0, 2, 0, 1), "00015": box(H, W, 2, 4, 2, 4)}
    s = one_expression(tmp_path, gt, pred).scores
    assert s.T_recall == pytest.approx(1 / 2, abs=1e-15)
    assert s.IoU_all == pytest.approx((1 + 0 + 0.5 + 0) / 4, abs=1e-15)
    assert s.IoU_gold == pytest.approx((0 + 0.5) / 2, abs=1e-15)
    assert s.IoU_gold_pred == pytest.approx((0 + 0.5 + 0) / 3, abs=1e-15)
    assert (s.n_frames, s.n_gt, s.n_pred, s.n_hit) == (4, 2, 2, 1)


def test_it_scores_a_missing_prediction_as_empty(tmp_path):
    gt = {"00000": box(H, W, 0, 1, 0, 1)}
    row = one_expression(tmp_path, gt, None)
    assert row.missing
    s = row.scores
    assert (s.T_recall, s.IoU_gold, s.IoU_gold_pred) == (0, 0, 0)
    assert s.IoU_all == pytest.approx(3 / 4)  # three frames where both are empty


def test_it_counts_empty_versus_empty_frames_as_iou_one_in_iou_all_only(tmp_path):
    gt = {"00000": box(H, W, 0, 2, 0, 2)}
    s = one_expression(tmp_path, gt, {"00000": box(H, W, 0, 2, 0, 2)}).scores
    assert s.IoU_all == pytest.approx((1 + 1 + 1 + 1) / 4)
    assert s.IoU_gold == pytest.approx(1 / 1)
    assert s.IoU_gold_pred == pytest.approx(1 / 1)


def test_it_treats_explicit_empty_masks_and_nulls_as_no_mask(tmp_path):
    gt = {"00000": box(H, W, 0, 2, 0, 2), "00005": box(H, W, 1, 3, 1, 3)}
    pred = {"00000": box(H, W, 0, 2, 0, 1), "00005": EMPTY, "00010": None, "00015": EMPTY}
    s = one_expression(tmp_path, gt, pred).scores
    assert (s.n_pred, s.n_hit) == (1, 1)
    assert s.T_recall == pytest.approx(1 / 2)
    assert s.IoU_all == pytest.approx((0.5 + 0 + 1 + 1) / 4)
    assert s.IoU_gold == pytest.approx((0.5 + 0) / 2)
    assert s.IoU_gold_pred == pytest.approx((0.5 + 0) / 2)


def test_it_punishes_predictions_only_on_frames_without_the_object(tmp_path):
    gt = {"00000": box(H, W, 0, 2, 0, 2)}
    pred = {"00005": box(H, W, 0, 2, 0, 2), "00010": box(H, W, 0, 1, 0, 1)}
    s = one_expression(tmp_path, gt, pred).scores
    assert s.T_recall == 0
    assert s.IoU_gold == 0
    assert s.IoU_gold_pred == 0 / 3
    assert s.IoU_all == pytest.approx((0 + 0 + 0 + 1) / 4)


def test_it_counts_a_wrong_mask_on_a_gt_frame_as_temporally_found(tmp_path):
    gt = {"00000": box(H, W, 0, 2, 0, 2)}
    pred = {"00000": box(H, W, 2, 4, 2, 4)}  # no overlap at all
    s = one_expression(tmp_path, gt, pred).scores
    assert s.T_recall == 1 / 1
    assert s.IoU_gold == 0 and s.IoU_gold_pred == 0
    assert s.IoU_all == pytest.approx(3 / 4)


def test_it_uses_only_the_frames_of_a_medium_sub_clip(tmp_path):
    long_frames = ["00000", "00005", "00010", "00015", "00020", "00025"]
    window = long_frames[2:5]
    videos = {
        "L": {"split": "long", "frames": long_frames, "expressions": {"0": "1"}},
        "L--1": {"split": "medium", "frames": window, "expressions": {"0": "1"}},
    }
    # Visible in frames 0, 2, 3 of the long clip: the window (2, 3, 4) sees 2 and 3.
    track = {"00000": box(H, W, 0, 2, 0, 2), "00010": box(H, W, 0, 2, 0, 2), "00015": box(H, W, 0, 4, 0, 1)}
    write_gt(tmp_path / "gt", videos, {("L", "1"): track})
    pred = tmp_path / "pred"
    # Outside the window (00000) must be ignored; 00010 half right; 00020 a false positive.
    write_pred_json(pred, "medium", "L--1", "0", "1",
                    {"00000": box(H, W, 0, 2, 0, 2), "00010": box(H, W, 0, 2, 0, 1), "00020": box(H, W, 0, 1, 0, 1)})
    gt = load_ground_truth(tmp_path / "gt")
    assert gt.videos["L--1"].clip == "L"
    result = evaluate(gt, pred, split="medium")
    (row,) = result.expressions
    s = row.scores
    assert (s.n_frames, s.n_gt, s.n_pred, s.n_hit) == (3, 2, 1 + 1, 1)
    assert s.T_recall == pytest.approx(1 / 2)
    assert s.IoU_all == pytest.approx((0.5 + 0 + 0) / 3)
    assert s.IoU_gold == pytest.approx((0.5 + 0) / 2)
    assert s.IoU_gold_pred == pytest.approx((0.5 + 0 + 0) / 3)
    assert [w.code for w in result.warnings] == ["unknown_frames"]


def test_it_averages_expressions_unweighted_and_overall_over_all_expressions(tmp_path):
    # short: one expression, perfect (1.0). long: two expressions, 0.5 and 0 on IoU_gold.
    videos = {
        "s": {"split": "short", "frames": ["00000"], "expressions": {"0": "1"}},
        "l": {"split": "long", "frames": ["00000", "00005"], "expressions": {"0": "1", "1": "2"}},
    }
    tracks = {
        ("s", "1"): {"00000": box(H, W, 0, 2, 0, 2)},
        ("l", "1"): {"00000": box(H, W, 0, 2, 0, 2)},
        ("l", "2"): {"00005": box(H, W, 0, 2, 0, 2)},
    }
    write_gt(tmp_path / "gt", videos, tracks)
    pred = tmp_path / "pred"
    write_pred_json(pred, "short", "s", "0", "1", {"00000": box(H, W, 0, 2, 0, 2)})
    write_pred_json(pred, "long", "l", "0", "1", {"00000": box(H, W, 0, 2, 0, 1)})
    write_pred_json(pred, "long", "l", "1", "2", {})
    summaries = evaluate(load_ground_truth(tmp_path / "gt"), pred).summaries
    assert summaries["short"].IoU_gold == pytest.approx(100 * 1.0)
    assert summaries["long"].IoU_gold == pytest.approx(100 * (0.5 + 0) / 2)
    # overall is the mean over all three expressions, not the mean of the split means.
    assert summaries["overall"].IoU_gold == pytest.approx(100 * (1.0 + 0.5 + 0) / 3)
    assert set(summaries) == {"short", "long", "overall"}
    assert summaries["overall"].n_expressions == 3


def test_it_refuses_an_expression_without_a_visible_frame():
    with pytest.raises(ValueError, match="visible"):
        scores_from_ious(n_frames=3, n_gt=0, n_pred=1, ious=[])


def test_it_refuses_to_summarize_nothing():
    with pytest.raises(ValueError):
        summarize([])

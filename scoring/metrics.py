"""The four EgoMask metrics (METRICS.md), per expression and per split, in RLE space.

Per expression over the video's N frames, with G the frames whose ground truth is non-empty and
P the frames whose prediction is non-empty; a frame where both are empty has IoU 1:

    T_recall      = |G ∩ P| / |G|
    IoU_all       = (sum of IoU over G ∩ P + (N - |G ∪ P|)) / N
    IoU_gold      =  sum of IoU over G ∩ P / |G|
    IoU_gold_pred =  sum of IoU over G ∩ P / |G ∪ P|

(a frame in exactly one of G and P has IoU 0). Only frames in G ∩ P need an intersection, which
is counted exactly on the run lengths (rle.intersections), so no frame is ever decoded; IoU is
then |G∩P| / |G∪P| of two exact integers, as the official evaluator divides them.

A split's value is the unweighted mean over its expressions, x100; "overall" is the same mean over
every expression scored. Sums use math.fsum so that the result does not depend on summation order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from . import rle

METRICS: tuple[str, ...] = ("T_recall", "IoU_all", "IoU_gold", "IoU_gold_pred")
PRIMARY_METRIC = "IoU_gold_pred"
LOW_IOU = 0.5  # a hit (a frame of G ∩ P) below this IoU counts as a low-IoU hit (scoring.diagnostics)


@dataclass(frozen=True)
class ExpressionScores:
    """Frame counts and the four metrics (fractions in [0, 1]) of one expression."""

    n_frames: int
    n_gt: int  # |G|
    n_pred: int  # |P|
    n_hit: int  # |G ∩ P|
    iou_sum: float  # sum of IoU over G ∩ P
    T_recall: float
    IoU_all: float
    IoU_gold: float
    IoU_gold_pred: float
    n_low_iou: int = 0  # hits whose IoU is below LOW_IOU

    def metric(self, name: str) -> float:
        return float(getattr(self, name))


def scores_from_ious(n_frames: int, n_gt: int, n_pred: int, ious: Sequence[float]) -> ExpressionScores:
    """The four metrics from frame counts and the IoUs of the frames in G ∩ P."""
    if n_gt <= 0:
        raise ValueError("an expression needs at least one frame where the object is visible")
    n_hit = len(ious)
    iou_sum = math.fsum(ious)
    n_union = n_gt + n_pred - n_hit
    return ExpressionScores(
        n_frames=n_frames,
        n_gt=n_gt,
        n_pred=n_pred,
        n_hit=n_hit,
        iou_sum=iou_sum,
        T_recall=n_hit / n_gt,
        IoU_all=(iou_sum + (n_frames - n_union)) / n_frames,
        IoU_gold=iou_sum / n_gt,
        IoU_gold_pred=iou_sum / n_union,
        n_low_iou=int(np.count_nonzero(np.asarray(ious, dtype=np.float64) < LOW_IOU)),
    )


def score_expression(
    frames: Sequence[str],
    gt: Mapping[str, str],
    pred: Mapping[str, str],
    height: int,
    width: int,
) -> ExpressionScores:
    """Score one expression from compressed counts strings.

    `gt` and `pred` map frame names to compressed counts of non-empty masks; frames not in
    `frames` are ignored. (The evaluation scores many expressions at once from parsed runs;
    this is the same computation for one.)
    """
    in_gt = [f for f in frames if f in gt]
    n_pred = sum(1 for f in frames if f in pred)
    hits = [f for f in in_gt if f in pred]
    truth = rle.parse_counts([gt[f] for f in hits], height * width)
    guess = rle.parse_counts([pred[f] for f in hits], height * width)
    every = np.arange(len(hits))
    inter = rle.intersections(truth, every, guess, every)
    return scores_from_ious(len(frames), len(in_gt), n_pred, inter / (truth.areas + guess.areas - inter))


@dataclass(frozen=True)
class MetricSummary:
    """Mean of the four metrics over some expressions, in percent."""

    n_expressions: int
    T_recall: float
    IoU_all: float
    IoU_gold: float
    IoU_gold_pred: float

    def as_dict(self) -> dict[str, float]:
        return {name: float(getattr(self, name)) for name in METRICS}


def summarize(scores: Iterable[ExpressionScores]) -> MetricSummary:
    """Unweighted mean over expressions, x100."""
    rows = list(scores)
    if not rows:
        raise ValueError("no expressions to summarize")
    means = {name: 100.0 * math.fsum(r.metric(name) for r in rows) / len(rows) for name in METRICS}
    return MetricSummary(n_expressions=len(rows), **means)

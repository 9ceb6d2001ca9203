"""Where a method fails: the egocentric traits of each expression, results by trait bucket, error types.

Traits are derived from the ground truth alone, once per ground-truth version (the paper's analysis axes):

    presence           % of the video's frames where the object is visible (|G| / N)
    trajectories       how many separate stretches of consecutive frames the object is visible in
    trajectory_length  mean length of a trajectory, % of the video (|G| / trajectories / N)
    area               mean mask area where visible, % of the frame
    adjacent_iou       mean IoU of the object's masks in adjacent frames (both visible), %; none when the object
                       is never visible in two frames in a row
    frames             video length in frames (1 fps: seconds)
    first_frames       whether the object is visible in the first k frames (k = 5: the key frames a method like
                       Sa2VA starts from)

Each numeric trait is cut into buckets at its tertiles over all the ground truth's expressions (fewer buckets
where tied values make edges coincide), so buckets are fixed per ground-truth version and the same for every
submission; a value equal to an edge falls in the lower bucket. A submission's results by bucket are the
four metrics' unweighted means over the expressions in the bucket, with the count.

Error types are frame counts over G (ground-truth frames), P (predicted frames): missed = |G \\ P|,
hallucinated = |P \\ G|, low-IoU hits = frames of G ∩ P whose IoU is below 0.5.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from . import rle
from .groundtruth import GroundTruth
from .metrics import LOW_IOU, METRICS
from .stats import cluster_of

FIRST_FRAMES = 5
TRAITS: tuple[str, ...] = ("presence", "trajectories", "trajectory_length", "area", "adjacent_iou", "frames",
                           "first_frames")
_LABELS = {
    "presence": ("presence", "% of frames"),
    "trajectories": ("trajectories", "count"),
    "trajectory_length": ("trajectory length", "% of the video"),
    "area": ("mask area", "% of the frame"),
    "adjacent_iou": ("adjacent-frame IoU", "%"),
    "frames": ("video length", "frames"),
    "first_frames": ("visible in the first frames", ""),
}
_QUANTILES = (1 / 3, 2 / 3)
NONE_BUCKET = "none"


@dataclass(frozen=True)
class ExpressionTraits:
    split: str
    video: str
    exp_id: str
    cluster: str
    presence: float
    trajectories: int
    trajectory_length: float
    area: float
    adjacent_iou: float | None
    frames: int
    first_frames: bool

    def value(self, trait: str) -> float | int | bool | None:
        return getattr(self, trait)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Bucketing:
    """How one trait is cut: edges (numeric traits) and the buckets' labels, in order."""

    trait: str
    edges: tuple[float, ...]
    labels: tuple[str, ...]

    def bucket(self, value: float | int | bool | None) -> str:
        if value is None:
            return NONE_BUCKET
        if self.trait == "first_frames":
            return self.labels[1] if value else self.labels[0]
        return self.labels[int(np.searchsorted(np.asarray(self.edges), float(value), side="left"))]


@dataclass(frozen=True)
class Traits:
    """The traits of every expression of a ground-truth version (in its order) and their buckets."""

    gt_version: str
    k: int
    expressions: tuple[ExpressionTraits, ...]
    buckets: Mapping[str, Bucketing]

    def expression_keys(self) -> list[tuple[str, str, str]]:
        return [(e.split, e.video, e.exp_id) for e in self.expressions]

    def as_dict(self) -> dict[str, object]:
        return {
            "format": 1, "gt_version": self.gt_version, "k": self.k,
            "traits": {name: {"label": _LABELS[name][0], "unit": _LABELS[name][1], "edges": list(b.edges),
                              "buckets": list(b.labels)} for name, b in self.buckets.items()},
            "expressions": [{"split": e.split, "video": e.video, "exp_id": e.exp_id, "cluster": e.cluster,
                             **{t: e.value(t) for t in TRAITS}} for e in self.expressions],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Traits:
        rows = tuple(ExpressionTraits(**row) for row in data["expressions"])  # type: ignore[arg-type, union-attr]
        buckets = {name: Bucketing(name, tuple(spec["edges"]), tuple(spec["buckets"]))
                   for name, spec in data["traits"].items()}  # type: ignore[union-attr, index]
        return cls(str(data["gt_version"]), int(data["k"]), rows, buckets)  # type: ignore[call-overload]


def _runs_of(positions: np.ndarray) -> int:
    if not len(positions):
        return 0
    return int(1 + np.count_nonzero(np.diff(positions) > 1))


def traits(gt: GroundTruth, *, k: int = FIRST_FRAMES) -> Traits:
    """Every expression's traits and the buckets, from the ground truth (one batch of intersections)."""
    rows: list[dict[str, object]] = []
    pairs_a: list[int] = []
    pairs_b: list[int] = []
    owners: list[int] = []
    for n, expression in enumerate(gt.expressions()):
        video = gt.videos[expression.video]
        where = {frame: i for i, frame in enumerate(video.frames)}
        masks = gt.mask_indices(expression)
        positions = np.fromiter((where[f] for f in masks), dtype=np.int64, count=len(masks))
        index = np.fromiter(masks.values(), dtype=np.int64, count=len(masks))
        n_frames, n_gt = len(video.frames), len(masks)
        runs = _runs_of(positions)
        adjacent = np.flatnonzero(np.diff(positions) == 1)
        pairs_a.extend(index[adjacent].tolist())
        pairs_b.extend(index[adjacent + 1].tolist())
        owners.extend([n] * len(adjacent))
        rows.append({
            "split": expression.split, "video": expression.video, "exp_id": expression.exp_id,
            "cluster": cluster_of(expression.split, expression.video),
            "presence": 100.0 * n_gt / n_frames,
            "trajectories": runs,
            "trajectory_length": 100.0 * n_gt / max(runs, 1) / n_frames,
            "area": 100.0 * float(np.mean(gt.runs.areas[index] / gt.runs.pixels[index])) if n_gt else 0.0,
            "adjacent_iou": None, "frames": n_frames,
            "first_frames": bool(np.any(positions < k)),
        })
    if pairs_a:
        inter = rle.intersections(gt.runs, pairs_a, gt.runs, pairs_b)
        ious = inter / (gt.runs.areas[pairs_a] + gt.runs.areas[pairs_b] - inter)
        sums = np.bincount(owners, weights=ious, minlength=len(rows))
        counts = np.bincount(owners, minlength=len(rows))
        for n in np.flatnonzero(counts):
            rows[n]["adjacent_iou"] = 100.0 * float(sums[n] / counts[n])
    found = tuple(ExpressionTraits(**row) for row in rows)  # type: ignore[arg-type]
    return Traits(gt.version, k, found, {t: _bucketing(t, [e.value(t) for e in found], k) for t in TRAITS})


def _bucketing(trait: str, values: Sequence[object], k: int) -> Bucketing:
    if trait == "first_frames":
        return Bucketing(trait, (), (f"absent from the first {k}", f"visible in the first {k}"))
    present = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if not len(present):
        return Bucketing(trait, (), ("all",))
    edges = tuple(float(e) for e in np.unique(np.round(np.quantile(present, _QUANTILES), 6)))
    if trait in ("trajectories", "frames"):
        edges = tuple(sorted({float(np.floor(e)) for e in edges}))
    edges = tuple(e for e in edges if e < present.max())  # an edge at the maximum would leave an empty bucket
    return Bucketing(trait, edges, _labels(edges, integer=trait in ("trajectories", "frames")))


def _number(value: float, integer: bool) -> str:
    return f"{int(value)}" if integer else f"{value:.3g}"


def _labels(edges: tuple[float, ...], *, integer: bool) -> tuple[str, ...]:
    if not edges:
        return ("all",)
    labels = [f"≤ {_number(edges[0], integer)}"]
    for low, high in zip(edges, edges[1:]):
        if integer:
            labels.append(f"{int(high)}" if low + 1 == high else f"{int(low) + 1}–{int(high)}")
        else:
            labels.append(f"{_number(low, integer)}–{_number(high, integer)}")
    labels.append(f"> {_number(edges[-1], integer)}")
    return tuple(labels)


# --- a submission's results by bucket and its errors -------------------------------------------------


@dataclass(frozen=True)
class BucketResult:
    bucket: str
    n: int
    metrics: Mapping[str, float]  # percent

    def as_dict(self) -> dict[str, object]:
        return {"bucket": self.bucket, "n": self.n, **self.metrics}


def aligned(traits_: Traits, rows: Iterable[object]) -> tuple[np.ndarray, np.ndarray]:
    """Per-expression metric fractions (E, 4) in the traits' order, and which of them were scored (E,)."""
    position = {key: i for i, key in enumerate(traits_.expression_keys())}
    values = np.full((len(position), len(METRICS)), np.nan)
    scored = np.zeros(len(position), dtype=bool)
    for row in rows:
        i = position.get((row.split, row.video, row.exp_id))  # type: ignore[attr-defined]
        if i is not None:
            values[i] = [row.scores.metric(m) for m in METRICS]  # type: ignore[attr-defined]
            scored[i] = True
    return values, scored


def by_trait(traits_: Traits, values: np.ndarray, scored: np.ndarray | None = None
             ) -> dict[str, list[BucketResult]]:
    """The four metrics (percent) by bucket of each trait, over the scored expressions; empty buckets left out."""
    scored = np.isfinite(values[:, 0]) if scored is None else scored
    out: dict[str, list[BucketResult]] = {}
    for trait, bucketing in traits_.buckets.items():
        names = np.asarray([bucketing.bucket(e.value(trait)) for e in traits_.expressions], dtype=object)
        results = []
        for label in (*bucketing.labels, NONE_BUCKET):
            chosen = scored & (names == label)
            if chosen.any():
                means = 100.0 * values[chosen].mean(axis=0)
                results.append(BucketResult(label, int(chosen.sum()), dict(zip(METRICS, means.tolist()))))
        out[trait] = results
    return out


@dataclass(frozen=True)
class Errors:
    """Frame counts of one split's errors."""

    expressions: int
    gt_frames: int
    pred_frames: int
    hits: int
    missed: int
    hallucinated: int
    low_iou: int

    def as_dict(self) -> dict[str, int | float]:
        def share(part: int, whole: int) -> float:
            return 100.0 * part / whole if whole else 0.0

        return {"expressions": self.expressions, "gt_frames": self.gt_frames, "pred_frames": self.pred_frames,
                "hits": self.hits, "missed": self.missed, "hallucinated": self.hallucinated,
                "low_iou": self.low_iou, "low_iou_below": LOW_IOU,
                "missed_pct": share(self.missed, self.gt_frames),
                "hallucinated_pct": share(self.hallucinated, self.pred_frames),
                "low_iou_pct": share(self.low_iou, self.hits)}


def errors(rows: Iterable[object], *, overall: bool = True) -> dict[str, Errors]:
    """Missed, hallucinated and low-IoU frames per split (and overall) of ExpressionResult-like rows."""
    sums: dict[str, list[int]] = {}
    for row in rows:
        s = row.scores  # type: ignore[attr-defined]
        add = [1, s.n_gt, s.n_pred, s.n_hit, s.n_gt - s.n_hit, s.n_pred - s.n_hit, s.n_low_iou]
        for split in (row.split, "overall") if overall else (row.split,):  # type: ignore[attr-defined]
            total = sums.setdefault(split, [0] * 7)
            for j, v in enumerate(add):
                total[j] += v
    return {split: Errors(*total) for split, total in sums.items()}

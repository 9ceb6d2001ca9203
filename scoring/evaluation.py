"""Score a submission against ground truth, or check it without scoring.

One pass, expression by expression: read the expression's masks, score them, drop them. Memory
therefore depends on the largest expression, not on the size of the benchmark.
"""

from __future__ import annotations

import contextlib
import os
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from .archive import Limits, Source, open_source
from .errors import InvalidSubmission, Location, ScoringWarning
from .groundtruth import SPLITS, GroundTruth
from .metrics import METRICS, ExpressionScores, MetricSummary, score_expression, summarize
from .predictions import index_layout, read_expression, sample

# Bump when anything that can change a number changes; every stored score records it.
SCORER_VERSION = "1.0.0"
OVERALL = "overall"

Submission = str | os.PathLike[str] | Source


@dataclass(frozen=True)
class ExpressionResult:
    split: str
    video: str
    exp_id: str
    obj_id: str
    missing: bool  # no prediction at all for this expression: scored as empty
    scores: ExpressionScores

    def as_row(self) -> dict[str, object]:
        """A flat row (per-expression CSV); metrics as fractions in [0, 1]."""
        s = self.scores
        return {
            "split": self.split,
            "video": self.video,
            "exp_id": self.exp_id,
            "obj_id": self.obj_id,
            "missing": int(self.missing),
            "n_frames": s.n_frames,
            "n_gt": s.n_gt,
            "n_pred": s.n_pred,
            "n_hit": s.n_hit,
            **{name: s.metric(name) for name in METRICS},
        }


@dataclass(frozen=True)
class Evaluation:
    """Per-split summaries (percent), per-expression rows, warnings and the versions used."""

    summaries: Mapping[str, MetricSummary]  # split names and, for a full run, "overall"
    expressions: tuple[ExpressionResult, ...]
    warnings: tuple[ScoringWarning, ...]
    scorer_version: str
    gt_version: str

    @property
    def missing(self) -> tuple[ExpressionResult, ...]:
        return tuple(row for row in self.expressions if row.missing)

    def as_dict(self) -> dict[str, dict[str, float]]:
        """{"short": {"T_recall": .., ...}, ..., "overall": {...}}: the CLI's --json shape."""
        return {name: summary.as_dict() for name, summary in self.summaries.items()}


@dataclass(frozen=True)
class ValidationReport:
    errors: tuple[InvalidSubmission, ...]
    warnings: tuple[ScoringWarning, ...]
    n_expressions: int  # expressions that have prediction files

    @property
    def ok(self) -> bool:
        return not self.errors


def _opened(submission: Submission, limits: Limits) -> contextlib.AbstractContextManager[Source]:
    if isinstance(submission, Source):
        return contextlib.nullcontext(submission)
    return open_source(submission, limits)


def select_splits(gt: GroundTruth, split: str | None) -> tuple[str, ...]:
    """The splits to score: one by name, or every split the ground truth has (None or "all")."""
    if split in (None, "all"):
        return gt.splits
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)} or all")
    if split not in gt.splits:
        raise ValueError(f"the ground truth has no {split} split")
    return (split,)


def evaluate(
    gt: GroundTruth,
    submission: Submission,
    *,
    split: str | None = None,
    limits: Limits | None = None,
) -> Evaluation:
    """Score `submission` (zip, folder or open Source). Raises InvalidSubmission listing every problem."""
    limits = limits or Limits()
    splits = select_splits(gt, split)
    warnings: list[ScoringWarning] = []
    errors: list[InvalidSubmission] = []
    rows: list[ExpressionResult] = []
    with _opened(submission, limits) as source:
        layout = index_layout(source.files)
        warnings.extend(layout.warnings)
        for expression in gt.expressions(splits):
            video = gt.videos[expression.video]
            files = layout.expressions.get((expression.split, expression.video, expression.exp_id))
            masks: Mapping[str, str] = {}
            if files is not None:
                if len(errors) >= limits.max_errors:
                    continue
                try:
                    pred = read_expression(source, files, size=(video.height, video.width), limits=limits)
                except InvalidSubmission as exc:
                    errors.append(exc)
                    continue
                masks = pred.masks
                warnings.extend(_expression_warnings(files.location, pred.frames, video.frames, pred.obj_id,
                                                     expression.obj_id))
            if errors:
                continue  # the submission is rejected anyway; keep reading only to find more problems
            scores = score_expression(video.frames, gt.masks(expression), masks, video.height, video.width)
            rows.append(ExpressionResult(expression.split, expression.video, expression.exp_id,
                                         expression.obj_id, files is None, scores))
        warnings.extend(_unknown_warnings(gt, splits, layout.expressions))
    if errors:
        raise errors[0].with_problems(tuple(errors))
    warnings.extend(_missing_warnings(rows))
    summaries = {s: summarize(r.scores for r in rows if r.split == s) for s in splits}
    if split in (None, "all"):
        summaries[OVERALL] = summarize(r.scores for r in rows)
    return Evaluation(
        summaries=MappingProxyType(summaries),
        expressions=tuple(rows),
        warnings=tuple(warnings),
        scorer_version=SCORER_VERSION,
        gt_version=gt.version,
    )


def validate_submission(
    submission: Submission,
    *,
    gt: GroundTruth | None = None,
    split: str | None = None,
    limits: Limits | None = None,
) -> ValidationReport:
    """Every problem and warning of a submission, without raising for problems in it.

    With ground truth this is exactly what `evaluate` would accept or refuse. Without it, the
    structural checks a participant can run before uploading: safe archive, layout, well-formed
    JSON, RLE and PNG, and one mask size per video.
    """
    limits = limits or Limits()
    if gt is not None:
        try:
            evaluation = evaluate(gt, submission, split=split, limits=limits)
        except InvalidSubmission as exc:
            return ValidationReport(errors=exc.problems, warnings=(), n_expressions=0)
        found = sum(1 for row in evaluation.expressions if not row.missing)
        return ValidationReport(errors=(), warnings=evaluation.warnings, n_expressions=found)
    try:
        with _opened(submission, limits) as source:
            layout = index_layout(source.files)
            errors: list[InvalidSubmission] = []
            sizes: dict[tuple[str, str], tuple[int, int]] = {}
            for key, files in layout.expressions.items():
                if len(errors) >= limits.max_errors:
                    break
                try:
                    pred = read_expression(source, files, size=sizes.get(key[:2]), limits=limits)
                except InvalidSubmission as exc:
                    errors.append(exc)
                    continue
                if pred.size is not None:
                    sizes[key[:2]] = pred.size
    except InvalidSubmission as exc:
        return ValidationReport(errors=(exc,), warnings=(), n_expressions=0)
    return ValidationReport(errors=tuple(errors), warnings=layout.warnings, n_expressions=len(layout.expressions))


def _expression_warnings(
    where: Location, named: frozenset[str], frames: tuple[str, ...], obj_id: str | None, gt_obj_id: str
) -> Iterator[ScoringWarning]:
    unknown = named.difference(frames)
    if unknown:
        yield ScoringWarning(
            "unknown_frames", f"{len(unknown)} frame(s) not in the video were ignored: {sample(unknown)}", where
        )
    if obj_id is not None and obj_id != gt_obj_id:
        yield ScoringWarning(
            "obj_id_mismatch", f"the file name says obj_id {obj_id}, the expression refers to obj_id {gt_obj_id}; "
            "scored against the expression's object", where
        )


def _unknown_warnings(
    gt: GroundTruth, splits: tuple[str, ...], found: Mapping[tuple[str, str, str], object]
) -> Iterator[ScoringWarning]:
    by_video: dict[tuple[str, str], list[str]] = defaultdict(list)
    for split, video, exp_id in found:
        if split in splits:
            by_video[(split, video)].append(exp_id)
    for (split, name), exp_ids in sorted(by_video.items()):
        video = gt.videos.get(name)
        where = Location(split=split, video=name)
        if video is None:
            yield ScoringWarning("unknown_video", "no such video in the benchmark; its predictions were ignored", where)
        elif video.split != split:
            yield ScoringWarning(
                "wrong_split", f"this video belongs to the {video.split} split; its predictions under {split}/ "
                "were ignored", where
            )
        else:
            known = {e.exp_id for e in video.expressions}
            unknown = [e for e in exp_ids if e not in known]
            if unknown:
                yield ScoringWarning(
                    "unknown_expressions", f"no such expression(s) in this video, ignored: {sample(unknown)}", where
                )


def _missing_warnings(rows: list[ExpressionResult]) -> Iterator[ScoringWarning]:
    by_split: dict[str, list[ExpressionResult]] = defaultdict(list)
    for row in rows:
        by_split[row.split].append(row)
    for split in SPLITS:
        missing = [f"{r.video}/{r.exp_id}" for r in by_split.get(split, ()) if r.missing]
        if missing:
            yield ScoringWarning(
                "missing_expressions",
                f"{len(missing)} of {len(by_split[split])} expressions have no prediction and were scored as empty: "
                f"{sample(missing)}",
                Location(split=split),
            )

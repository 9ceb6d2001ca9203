"""Score a submission against ground truth, or check it without scoring.

One pass over the submission: its layout is indexed once, each expression's file is read once,
and the masks of many expressions are parsed and intersected with the ground truth together
(batches of about 128 000 counts characters, which stay in the CPU cache), then dropped. Memory therefore depends on the
batch size, not on the size of the benchmark or the density of the predictions.
"""

from __future__ import annotations

import contextlib
import os
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from . import rle
from .archive import Limits, Source, open_source
from .errors import InvalidSubmission, Location, MalformedRLE, ScoringWarning
from .groundtruth import SPLITS, Expression, GroundTruth
from .layout import ExpressionFiles, Layout, index_layout, sample
from .metrics import METRICS, ExpressionScores, MetricSummary, scores_from_ious, summarize
from .predictions import RawMasks, read_expression

# Bump when anything that can change a number changes; every stored score records it.
SCORER_VERSION = "1.0.0"
OVERALL = "overall"
_BATCH_CHARS = 1 << 17  # counts characters per batch: large enough to be fast, small enough for the CPU cache

Submission = str | os.PathLike[str] | Source


@dataclass(frozen=True)
class Timeline:
    """Frame by frame, one expression: positions (in its video's `frames`) of the ground-truth frames G, the
    predicted frames P, and the IoU of each hit (G ∩ P, in order)."""

    n_frames: int
    gt: tuple[int, ...]
    pred: tuple[int, ...]
    hit_ious: tuple[float, ...]

    def as_dict(self) -> dict[str, object]:
        """Compact: G and P as [start, stop) ranges, hits as [position, IoU] pairs."""
        hits = np.intersect1d(np.asarray(self.gt, dtype=np.int64), np.asarray(self.pred, dtype=np.int64))
        ious = np.round(np.asarray(self.hit_ious, dtype=np.float64), 4)
        return {"n": self.n_frames, "gt": _ranges(self.gt), "pred": _ranges(self.pred),
                "hits": [[p, iou] for p, iou in zip(hits.tolist(), ious.tolist())]}


def _ranges(positions: Sequence[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for p in positions:
        if out and out[-1][1] == p:
            out[-1][1] = p + 1
        else:
            out.append([p, p + 1])
    return out


@dataclass(frozen=True)
class ExpressionResult:
    split: str
    video: str
    exp_id: str
    obj_id: str
    missing: bool  # no prediction at all for this expression: scored as empty
    scores: ExpressionScores
    timeline: Timeline | None = None  # only when evaluate(..., timelines=True)

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
            "n_low_iou": s.n_low_iou,
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
    root: str = ""  # the wrapping folders the predictions were found in ("" for none)

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
    n_expressions: int  # expressions that have prediction files (those of the ground truth, when given)
    root: str = ""

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


@dataclass
class _Pass:
    """What one pass over a submission found: rows in the ground truth's order, warnings, problems."""

    limits: Limits
    timelines: bool = False
    rows: list[ExpressionResult | None] = field(default_factory=list)
    warnings: list[ScoringWarning] = field(default_factory=list)
    found_errors: list[tuple[int, InvalidSubmission]] = field(default_factory=list)  # (expression slot, problem)
    empty_folders: list[str] = field(default_factory=list)
    found: int = 0

    @property
    def full(self) -> bool:
        return len(self.found_errors) >= self.limits.max_errors

    def fail(self, slot: int, error: InvalidSubmission) -> None:
        self.found_errors.append((slot, error))

    @property
    def errors(self) -> list[InvalidSubmission]:
        """The problems in the ground truth's order of expressions (masks are checked in batches)."""
        ordered = sorted(self.found_errors, key=lambda item: item[0])
        return [error for _, error in ordered[: self.limits.max_errors]]


@dataclass
class _Pending:
    slot: int
    expression: Expression
    files: ExpressionFiles
    raw: RawMasks


def _score(gt: GroundTruth, source: Source, layout: Layout, splits: tuple[str, ...], run: _Pass) -> None:
    """Read, check and score every expression of `splits` that has files, in batches."""
    pending: list[_Pending] = []
    chars = 0
    for expression in gt.expressions(splits):
        video = gt.videos[expression.video]
        files = layout.expressions.get((expression.split, expression.video, expression.exp_id))
        run.rows.append(None)
        if files is None:
            if not run.found_errors:
                run.rows[-1] = ExpressionResult(expression.split, expression.video, expression.exp_id,
                                                expression.obj_id, True, _scores(gt, expression, {}, ()),
                                                _timeline(gt, expression, {}, ()) if run.timelines else None)
            continue
        run.found += 1
        if run.full:
            continue
        try:
            raw = read_expression(source, files, size=(video.height, video.width), obj_id=expression.obj_id,
                                  limits=run.limits)[0]
        except InvalidSubmission as exc:
            run.fail(len(run.rows) - 1, exc)
            continue
        run.warnings.extend(_expression_warnings(files, raw, video.frames, expression.obj_id))
        if raw.path is None and not raw.named:
            run.empty_folders.append(files.folder)
        pending.append(_Pending(len(run.rows) - 1, expression, files, raw))
        chars += sum(map(len, raw.counts))
        if chars >= _BATCH_CHARS:
            _flush(gt, pending, run)
            chars = 0
    _flush(gt, pending, run)


def _flush(gt: GroundTruth, pending: list[_Pending], run: _Pass) -> None:
    """Parse the pending expressions' masks in one batch and score them against the ground truth."""
    if not pending:
        return
    parsed = _parse(pending, run)
    if parsed is not None and not run.found_errors:
        starts = np.cumsum([0, *(len(p.raw.counts) for p in pending)])
        own: list[dict[str, int]] = []
        for p, start in zip(pending, starts.tolist()):
            # Non-empty masks only: an empty RLE is no mask for that frame.
            non_empty = np.flatnonzero(parsed.areas[start : start + len(p.raw.counts)] > 0).tolist()
            own.append({p.raw.frames[i]: start + i for i in non_empty})
        truths = [gt.mask_indices(p.expression) for p in pending]
        hits = [[(g, own[k][f]) for f, g in truth.items() if f in own[k]] for k, truth in enumerate(truths)]
        pairs = np.asarray([pair for h in hits for pair in h], dtype=np.int64).reshape(-1, 2)
        inter = rle.intersections(gt.runs, pairs[:, 0], parsed, pairs[:, 1])
        ious = inter / (gt.runs.areas[pairs[:, 0]] + parsed.areas[pairs[:, 1]] - inter)
        bounds = np.cumsum([0, *(len(h) for h in hits)]).tolist()
        for k, p in enumerate(pending):
            own_ious = ious[bounds[k] : bounds[k + 1]]
            scores = _scores(gt, p.expression, own[k], own_ious, len(truths[k]))
            e = p.expression
            timeline = _timeline(gt, e, own[k], own_ious) if run.timelines else None
            run.rows[p.slot] = ExpressionResult(e.split, e.video, e.exp_id, e.obj_id, False, scores, timeline)
    pending.clear()


def _parse(pending: list[_Pending], run: _Pass) -> rle.ParsedCounts | None:
    """The batch's counts parsed together, or None after recording each bad expression's problem."""
    return _parse_batch([(p.slot, p.files, p.raw) for p in pending], run.fail, lambda: run.full)


def _parse_batch(batch: Sequence[tuple[int, ExpressionFiles, RawMasks]], fail: Callable[[int, InvalidSubmission], None],
                enough: Callable[[], bool]) -> rle.ParsedCounts | None:
    """Parse the counts of many expressions in one call. If one is malformed, parse them again one by
    one (rare) to name the first bad mask of each, through `fail(position, problem)` until `enough()`."""
    try:
        return rle.parse_counts([c for _, _, raw in batch for c in raw.counts],
                                [raw.size[0] * raw.size[1] for _, _, raw in batch for _ in raw.counts])  # type: ignore[index]
    except rle.RLEFormatError:
        pass
    for position, files, raw in batch:
        if enough() or not raw.counts:
            continue
        try:
            rle.parse_counts(raw.counts, raw.size[0] * raw.size[1])  # type: ignore[index]
        except rle.RLEFormatError as exc:
            fail(position, MalformedRLE(f"malformed RLE: {exc.reason}", raw.location(files, raw.frames[exc.index])))
    return None


def _scores(gt: GroundTruth, expression: Expression, predicted: Mapping[str, int], ious: Sequence[float],
            n_gt: int | None = None) -> ExpressionScores:
    frames = gt.videos[expression.video].frames
    n_pred = sum(1 for f in frames if f in predicted)
    return scores_from_ious(len(frames), len(gt.mask_indices(expression)) if n_gt is None else n_gt, n_pred, ious)


def _timeline(gt: GroundTruth, expression: Expression, predicted: Mapping[str, int], ious: Sequence[float]
              ) -> Timeline:
    frames = gt.videos[expression.video].frames
    truth = gt.mask_indices(expression)
    return Timeline(len(frames), tuple(i for i, f in enumerate(frames) if f in truth),
                    tuple(i for i, f in enumerate(frames) if f in predicted), tuple(float(x) for x in ious))


def _summaries(rows: list[ExpressionResult], splits: tuple[str, ...], split: str | None) -> dict[str, MetricSummary]:
    summaries = {s: summarize(r.scores for r in rows if r.split == s) for s in splits}
    if split in (None, "all"):
        summaries[OVERALL] = summarize(r.scores for r in rows)
    return summaries


def _one_pass(gt: GroundTruth, submission: Submission, split: str | None, limits: Limits,
              timelines: bool = False) -> tuple[_Pass, Layout]:
    splits = select_splits(gt, split)
    run = _Pass(limits, timelines)
    with _opened(submission, limits) as source:
        layout = index_layout(source.files, source.folders, videos={n: v.split for n, v in gt.videos.items()})
        run.warnings.extend(layout.warnings)
        _score(gt, source, layout, splits, run)
    run.warnings.extend(_unknown_warnings(gt, splits, layout.expressions))
    if run.empty_folders:
        run.warnings.append(ScoringWarning(
            "empty_folders", f"{len(run.empty_folders)} expression folder(s) hold no mask file (as VideoLISA leaves "
            f"them when it finds nothing) and were scored as empty predictions: {sample(run.empty_folders)}"))
    return run, layout


def evaluate(
    gt: GroundTruth,
    submission: Submission,
    *,
    split: str | None = None,
    limits: Limits | None = None,
    timelines: bool = False,
) -> Evaluation:
    """Score `submission` (zip, folder or open Source). Raises InvalidSubmission listing every problem.
    With `timelines`, each row also carries its frame-by-frame Timeline (the server's diagnostics)."""
    limits = limits or Limits()
    run, layout = _one_pass(gt, submission, split, limits, timelines)
    if run.errors:
        raise run.errors[0].with_problems(tuple(run.errors))
    rows = [row for row in run.rows if row is not None]
    warnings = [*run.warnings, *_missing_warnings(rows)]
    return Evaluation(
        summaries=MappingProxyType(_summaries(rows, select_splits(gt, split), split)),
        expressions=tuple(rows),
        warnings=tuple(warnings),
        scorer_version=SCORER_VERSION,
        gt_version=gt.version,
        root=layout.root,
    )


def validate_submission(
    submission: Submission,
    *,
    gt: GroundTruth | None = None,
    split: str | None = None,
    limits: Limits | None = None,
) -> ValidationReport:
    """Every problem and warning of a submission, without raising for problems in it.

    With ground truth this is exactly what `evaluate` would accept or refuse, and the same
    warnings. Without it, the structural checks a participant can run before uploading: safe
    archive, layout, well-formed JSON, RLE and PNG, and one mask size per video.
    """
    limits = limits or Limits()
    try:
        if gt is not None:
            run, layout = _one_pass(gt, submission, split, limits)
            rows = [row for row in run.rows if row is not None]
            warnings = run.warnings if run.errors else [*run.warnings, *_missing_warnings(rows)]
            return ValidationReport(tuple(run.errors), tuple(warnings), run.found, layout.root)
        with _opened(submission, limits) as source:
            layout = index_layout(source.files, source.folders)
            errors, warnings = _check_structure(source, layout, limits)
    except InvalidSubmission as exc:
        return ValidationReport(errors=(exc,), warnings=(), n_expressions=0)
    return ValidationReport(tuple(errors), (*layout.warnings, *warnings), len(layout.expressions), layout.root)


def _check_structure(source: Source, layout: Layout, limits: Limits
                     ) -> tuple[list[InvalidSubmission], list[ScoringWarning]]:
    """Read and check every file of every expression folder, as if each video's first mask set its size."""
    found: list[tuple[int, InvalidSubmission]] = []
    warnings: list[ScoringWarning] = []
    sizes: dict[tuple[str, str], tuple[int, int]] = {}
    batch: list[tuple[int, ExpressionFiles, RawMasks]] = []
    chars = 0
    for position, (key, files) in enumerate(layout.expressions.items()):
        if len(found) >= limits.max_errors:
            break
        try:
            for raw in read_expression(source, files, size=sizes.get(key[:2]), limits=limits):
                if raw.size is not None:
                    sizes[key[:2]] = raw.size
                warnings.extend(raw.warnings)
                batch.append((position, files, raw))
                chars += sum(map(len, raw.counts))
        except InvalidSubmission as exc:
            found.append((position, exc))
            continue
        if chars >= _BATCH_CHARS:
            _check_counts(batch, found, limits)
            chars = 0
    _check_counts(batch, found, limits)
    found.sort(key=lambda item: item[0])
    return [error for _, error in found[: limits.max_errors]], warnings


def _check_counts(batch: list[tuple[int, ExpressionFiles, RawMasks]], found: list[tuple[int, InvalidSubmission]],
                  limits: Limits) -> None:
    _parse_batch(batch, lambda position, error: found.append((position, error)),
                lambda: len(found) >= limits.max_errors)
    batch.clear()


def _expression_warnings(files: ExpressionFiles, raw: RawMasks, frames: tuple[str, ...], gt_obj_id: str
                         ) -> Iterator[ScoringWarning]:
    yield from raw.warnings
    unknown = raw.named.difference(frames)
    if unknown:
        yield ScoringWarning(
            "unknown_frames", f"{len(unknown)} frame(s) not in the video were ignored: {sample(unknown)}",
            files.location,
        )
    if raw.obj_id is not None and raw.obj_id != gt_obj_id:
        yield ScoringWarning(
            "obj_id_mismatch", f"the file name says obj_id {raw.obj_id}, the expression refers to obj_id {gt_obj_id}; "
            "scored against the expression's object", files.location,
        )


def _unknown_warnings(gt: GroundTruth, splits: tuple[str, ...], found: Mapping[tuple[str, str, str], object]
                      ) -> Iterator[ScoringWarning]:
    by_video: dict[tuple[str, str], list[str]] = defaultdict(list)
    for split, video, exp_id in found:
        if split in splits or video not in gt.videos:
            by_video[(split, video)].append(exp_id)
    for (split, name), exp_ids in sorted(by_video.items()):
        video = gt.videos.get(name)
        where = Location(split=split, video=name)
        if video is None:
            yield ScoringWarning("unknown_video", "no such video in the benchmark; its predictions were ignored", where)
            continue
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

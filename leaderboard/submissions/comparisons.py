"""Reads for the board's "by trait" view and for comparing submissions (reads only; views and the API shape them).

By trait: the rows of a visible board (selectors.board_get, so a private board stays empty for non-organizers),
each with its four metrics by bucket of one egocentric trait (scoring.diagnostics; buckets fixed per
ground-truth version, in the trait's order, each with its count of the split's expressions). On the overall
board the values are the stored Analysis.by_trait; on a split's board, the same means over that split's
expressions (Analysis.values). A row without an analysis on the phase's ground-truth version is listed with
no values.

Compare: two to eight submissions of one phase, each visible to the viewer with its exact scores (else it is
answered as missing, as the API's submission is). Per split: each one's scores and intervals, and the paired
bootstrap difference of each against the first (scoring.stats.paired_test on the per-expression values, with
the same resamples the intervals used: design(split, ...) of the ground-truth version); per trait bucket the
difference on the primary metric; and, where the viewer may see per-video results of every one of them, the
videos that differ most.

Leak rules (the issue's; one place: `small_buckets_shown`): a bucket with fewer expressions than the phase's
min_bucket_size is shown only to whoever may see per-video details of every row involved (organizers on a
board; on a comparison, whoever has `details` for each compared submission); nothing per video without
`details`; while the Ladder runs, no by-trait values for non-organizers (comparisons need exact scores).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache

from leaderboard.challenges.models import GroundTruthBundle, Phase
from leaderboard.challenges.permissions import Can, organizer_can
from leaderboard.challenges.selectors import phase_boards
from leaderboard.errors import ApplicationError, NotFound
from scoring import METRICS
from scoring.diagnostics import NONE_BUCKET, TRAITS, Traits
from scoring.stats import OVERALL, design, paired_test

from . import board_cache
from .boards import board_current
from .models import Analysis, Score, Submission
from .selectors import Viewer, board_get, small_buckets_shown as _small_buckets_rule, submission_access

MAX_COMPARED = 8
TOP_VIDEOS = 10


# --- the ground truth's traits and buckets ----------------------------------------------------------


@dataclass(frozen=True)
class Bucket:
    label: str
    n: int  # the split's expressions in this bucket


@dataclass(frozen=True)
class TraitSpec:
    name: str
    label: str
    unit: str


def trait_specs(*, phase: Phase) -> list[TraitSpec]:
    """The traits the phase's ground truth has buckets for (names, what they are called), in the issue's order."""
    bundle = phase.ground_truth if phase.ground_truth_id else None
    given = (bundle.traits or {}).get("traits", {}) if bundle is not None else {}
    return [TraitSpec(name, given.get(name, {}).get("label", name), given.get(name, {}).get("unit", ""))
            for name in TRAITS if not given or name in given]


@dataclass(frozen=True)
class _Layout:
    """What the numbers of one ground-truth version are laid out by: its expressions (in Analysis.values' order)
    and their trait buckets."""

    traits: Traits
    keys: list[tuple[str, str]]  # (split, video) per expression

    @classmethod
    def of(cls, data: dict) -> _Layout:
        traits = Traits.from_dict(data)
        return cls(traits, [(e.split, e.video) for e in traits.expressions])

    def index(self, split: str) -> np.ndarray:
        """Positions of a split's expressions (all of them for "overall")."""
        if split == OVERALL:
            return np.arange(len(self.keys))
        return np.flatnonzero(np.asarray([s == split for s, _ in self.keys], dtype=bool))

    def names(self, trait: str) -> np.ndarray:
        """Each expression's bucket label for the trait."""
        bucketing = self.traits.buckets[trait]
        return np.asarray([bucketing.bucket(e.value(trait)) for e in self.traits.expressions], dtype=object)

    def buckets(self, trait: str, index: np.ndarray) -> list[Bucket]:
        """The trait's buckets in order (and "none" where a value is undefined), each with its count among the
        expressions at `index`; empty buckets left out."""
        names = self.names(trait)[index]
        found = [Bucket(label, int(np.count_nonzero(names == label)))
                 for label in (*self.traits.buckets[trait].labels, NONE_BUCKET)]
        return [b for b in found if b.n]


def _layout(*, phase: Phase, gt_version: str) -> _Layout | None:
    """The traits of a ground-truth version of the phase's challenge (the phase's own bundle first)."""
    bundle = phase.ground_truth if phase.ground_truth_id else None
    if bundle is None or bundle.version != gt_version or not bundle.traits:
        bundle = (GroundTruthBundle.objects.filter(challenge_id=phase.challenge_id, version=gt_version)
                  .exclude(traits={}).order_by("-created_at").first())
    if bundle is None or not bundle.traits:
        return None
    return _Layout.of(bundle.traits)


def _matrix(values: bytes) -> np.ndarray:
    """Analysis.values as (4 metrics, E expressions) fractions."""
    array = np.frombuffer(bytes(values), dtype="<f8")
    return array.reshape(len(METRICS), -1)


def small_buckets_shown(*, organizer: bool = False, details: Sequence[bool] = ()) -> bool:
    """selectors.small_buckets_shown, for a board (an organizer sees every row's details) or some submissions."""
    return _small_buckets_rule(details=[True] if organizer else details)


def _visible_buckets(phase: Phase, buckets: list[Bucket], small_shown: bool) -> tuple[list[Bucket], int]:
    shown = [b for b in buckets if small_shown or b.n >= phase.min_bucket_size]
    return shown, len(buckets) - len(shown)


def _bucket_means(matrix: np.ndarray, names: np.ndarray, index: np.ndarray, label: str) -> dict[str, float] | None:
    """The four metrics (percent) over the scored expressions of one bucket among `index` (None if none)."""
    chosen = index[names[index] == label]
    chosen = chosen[np.isfinite(matrix[0, chosen])]
    if not len(chosen):
        return None
    return {m: 100.0 * float(matrix[j, chosen].mean()) for j, m in enumerate(METRICS)} | {"n": int(len(chosen))}


# --- the board by trait -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TraitRow:
    rank: int | None
    team: str | None
    method: str
    is_baseline: bool
    submission_id: int | None
    tie_group: int | None
    # One entry per shown bucket (in ByTrait.buckets' order): {"n", <metric>: percent}, None where the row has
    # no expression scored in the bucket; the whole list None where the row has no analysis to show.
    values: list[dict[str, float] | None] | None


@dataclass(frozen=True)
class ByTrait:
    phase: Phase
    split: str
    trait: str
    metric: str
    visible: bool
    message: str
    buckets: list[Bucket]
    hidden_buckets: int  # how many buckets are not shown (fewer expressions than the phase's minimum)
    min_bucket_size: int
    rows: list[TraitRow]
    label: str = ""
    unit: str = ""


def _check_trait(phase: Phase, trait: str) -> None:
    names = [spec.name for spec in trait_specs(phase=phase)]
    if trait not in names:
        raise ApplicationError(f"There is no trait {trait!r}; choose one of {', '.join(names)}.",
                               detail={"traits": names})


def board_by_trait(*, phase: Phase, split: str, trait: str, viewer: Viewer | None,
                   metric: str | None = None) -> ByTrait:
    """The visible board's rows with their results by bucket of `trait` (see the module's rules)."""
    codes = phase_boards(phase=phase)
    if split not in codes:
        raise ApplicationError(f"This phase has no {split} leaderboard; choose one of {', '.join(codes)}.",
                               detail={"splits": codes})
    _check_trait(phase, trait)
    board = board_get(phase=phase, split=split, metric=metric, viewer=viewer)
    spec = next(s for s in trait_specs(phase=phase) if s.name == trait)

    def answer(rows: list[TraitRow], buckets: list[Bucket] = (), hidden: int = 0, message: str = "") -> ByTrait:
        return ByTrait(phase, split, trait, board.metric, board.visible, message or board.message, list(buckets),
                       hidden, phase.min_bucket_size, rows, spec.label, spec.unit)

    bare = [TraitRow(r.rank, r.team, r.method, r.is_baseline, r.submission_id, r.tie_group, None)
            for r in board.rows]
    if not board.visible:
        return answer([])
    organizer = organizer_can(viewer, phase.challenge_id, Can.VIEW)
    if phase.ladder_active() and not organizer:
        return answer(bare, message="While the Ladder runs, results by trait are not shown; they are when the "
                      "phase ends.")
    bundle = phase.ground_truth if phase.ground_truth_id else None
    layout = _layout(phase=phase, gt_version=bundle.version) if bundle is not None and bundle.version else None
    if layout is None:
        return answer(bare, message="The ground truth's traits are not computed yet: they are once a submission "
                      "is scored.")
    index = layout.index(split)
    buckets, hidden = _visible_buckets(phase, layout.buckets(trait, index), small_buckets_shown(organizer=organizer))
    ids = [r.submission_id for r in board.rows if r.submission_id is not None]
    # The same board version and buckets give the same numbers: computed once, kept with the board's cache.
    version, stamp = board_current(phase=phase)
    key = (f"by-trait:{phase.pk}:{version}:{stamp}:{split}:{trait}:{bundle.version}:"
           f"{hashlib.sha256(repr([(b.label, b.n) for b in buckets]).encode()).hexdigest()[:12]}")
    values = cache.get(key)
    if values is None:
        analyses = Analysis.objects.filter(submission_id__in=ids, gt_version=bundle.version)
        if split == OVERALL:  # the stored results by trait are over every expression: the overall board's
            stored = dict(analyses.values_list("submission_id", "by_trait"))
            values = {sid: _stored_values(data.get(trait, []), buckets) for sid, data in stored.items()}
        else:
            names = layout.names(trait)
            values = {sid: [_bucket_means(_matrix(raw), names, index, b.label) for b in buckets]
                      for sid, raw in analyses.values_list("submission_id", "values")}
        cache.set(key, values, board_cache.CACHE_SECONDS)
    rows = [TraitRow(r.rank, r.team, r.method, r.is_baseline, r.submission_id, r.tie_group,
                     values.get(r.submission_id)) for r in board.rows]
    message = board.message
    if hidden:
        message = (f"{hidden} bucket{'s' if hidden > 1 else ''} with fewer than {phase.min_bucket_size} "
                   "expressions not shown.")
    return answer(rows, buckets, hidden, message)


def _stored_values(stored: list[dict], buckets: list[Bucket]) -> list[dict[str, float] | None]:
    by_label = {entry["bucket"]: entry for entry in stored}
    out: list[dict[str, float] | None] = []
    for bucket in buckets:
        entry = by_label.get(bucket.label)
        out.append(None if entry is None else {"n": entry["n"], **{m: entry[m] for m in METRICS}})
    return out


# --- comparisons ------------------------------------------------------------------------------------


def compare_ids(raw: Sequence[str] | str) -> list[int]:
    """The submission ids of `?submissions=12,34` (or repeated `?submissions=12&submissions=34`, as a form sends
    them), in order; a clear sentence for anything else."""
    parts = [p.strip() for item in ([raw] if isinstance(raw, str) else raw) for p in item.split(",") if p.strip()]
    if not parts:
        raise ApplicationError("Name the submissions to compare: ?submissions=12,34 (two to eight ids).")
    bad = [p for p in parts if not p.isdigit()]
    if bad:
        raise ApplicationError(f"{bad[0]!r} is not a submission id: give ids as ?submissions=12,34.")
    ids = [int(p) for p in parts]
    if len(set(ids)) != len(ids):
        raise ApplicationError("Each submission may be named once.")
    if not 2 <= len(ids) <= MAX_COMPARED:
        raise ApplicationError(f"Compare two to {MAX_COMPARED} submissions; {len(ids)} given.")
    return ids


@dataclass(frozen=True)
class Compared:
    submission_id: int
    team: str | None
    method: str
    is_baseline: bool


@dataclass(frozen=True)
class Difference:
    """One submission minus the first (the reference), on one metric, in percent points."""

    difference: float
    ci: tuple[float, float]
    p_value: float
    n_expressions: int
    videos: int  # resampling units (videos, medium clips with their source): with one, the interval says nothing
    distinguishable: bool  # p < the phase's tie_level


@dataclass(frozen=True)
class SplitComparison:
    split: str
    scores: list[dict[str, float]]  # per compared submission, the four metrics (percent)
    ci: list[dict[str, list[float]]]  # per compared submission, each metric's 95% interval
    n_expressions: list[int]
    differences: list[dict[str, Difference | None]]  # per submission after the first, per metric


@dataclass(frozen=True)
class TraitComparison:
    trait: str
    label: str
    buckets: list[Bucket]
    hidden_buckets: int
    differences: list[list[Difference | None]]  # per submission after the first, per shown bucket


@dataclass(frozen=True)
class VideoDifference:
    split: str
    video: str
    expressions: int
    reference: float  # the first submission's mean over the video's expressions, percent
    other: float
    difference: float


@dataclass(frozen=True)
class Comparison:
    phase: Phase
    submissions: list[Compared]
    metric: str  # the primary metric (traits and videos)
    level: float  # the phase's tie_level
    samples: int
    gt_version: str
    splits: list[SplitComparison]
    traits: list[TraitComparison]
    min_bucket_size: int
    # Per submission after the first, its videos with the largest differences; None where per-video results
    # are not the viewer's to see.
    videos: list[list[VideoDifference]] | None


_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth")


def _missing(position: int) -> NotFound:
    # Said by its place in the list, not its id: a submission one may not see is answered exactly as one that
    # does not exist.
    return NotFound(f"The {_ORDINALS[position]} submission named is not one you can see in this phase (there is no "
                    "such submission, or it is not yours to see).", detail={"position": position + 1})


def compare(*, phase: Phase, submission_ids: Sequence[int], viewer: Viewer | None) -> Comparison:
    """The comparison of the submissions (the first is the reference every other one is paired with)."""
    ids = list(submission_ids)
    viewer = viewer if viewer is not None else AnonymousUser()
    if len(set(ids)) != len(ids) or not 2 <= len(ids) <= MAX_COMPARED:
        raise ApplicationError(f"Compare two to {MAX_COMPARED} different submissions.")
    found = {s.pk: s for s in Submission.objects.filter(pk__in=ids, phase=phase)
             .select_related("phase__challenge", "team").prefetch_related("scores")}
    details = []
    for position, sid in enumerate(ids):
        submission = found.get(sid)
        access = submission_access(submission=submission, user=viewer) if submission is not None else None
        if access is None or not access.view or not access.exact_scores:
            raise _missing(position)
        details.append(access.details)
    submissions = [found[sid] for sid in ids]
    for submission in submissions:
        if not submission.scores.all():
            raise ApplicationError(f"Submission {submission.pk} has no scores yet; only scored submissions can be "
                                   "compared.")
    analyses = {a.submission_id: a for a in Analysis.objects.filter(submission_id__in=ids)}
    for submission in submissions:
        if submission.pk not in analyses:
            raise ApplicationError(f"Submission {submission.pk} was scored before per-expression results were kept; "
                                   "it can be compared once it is rescored.")
    versions = {analyses[s.pk].gt_version for s in submissions}
    if len(versions) > 1:
        by_version = defaultdict(list)
        for s in submissions:
            by_version[analyses[s.pk].gt_version[:12]].append(f"#{s.pk}")
        parts = "; ".join(f"{', '.join(names)} on {version}" for version, names in by_version.items())
        raise ApplicationError(f"These submissions were scored on different ground-truth versions ({parts}): their "
                               "results cannot be paired. Compare submissions scored on the same version.",
                               detail={"gt_versions": sorted(versions)})
    gt_version = versions.pop()
    layout = _layout(phase=phase, gt_version=gt_version)
    if layout is None:
        raise ApplicationError("The traits of the ground truth these submissions were scored on are not kept; "
                               "they cannot be compared.")
    matrices = [_matrix(analyses[s.pk].values) for s in submissions]
    if any(m.shape[1] != len(layout.keys) for m in matrices):
        raise ApplicationError("The stored results do not match the ground truth's expressions; rescoring the "
                               "submissions would fix that.")
    scores = [{score.split: score for score in s.scores.all()} for s in submissions]
    splits = [code for code in phase_boards(phase=phase) if all(code in given for given in scores)]
    primary = METRICS.index(phase.primary_metric)
    return Comparison(
        phase=phase,
        submissions=[Compared(s.pk, s.team.name if s.team_id else None, s.method_name, s.is_baseline)
                     for s in submissions],
        metric=phase.primary_metric, level=phase.tie_level, samples=phase.bootstrap_samples, gt_version=gt_version,
        splits=[_split_comparison(phase, layout, gt_version, split, [given[split] for given in scores], matrices)
                for split in splits],
        traits=[_trait_comparison(phase, layout, gt_version, spec, matrices, primary,
                                  small_buckets_shown(details=details)) for spec in trait_specs(phase=phase)
                if spec.name in layout.traits.buckets],
        min_bucket_size=phase.min_bucket_size,
        videos=_videos(layout, matrices, primary) if all(details) else None,
    )


def _paired(phase: Phase, layout: _Layout, gt_version: str, name: str, index: np.ndarray, reference: np.ndarray,
            other: np.ndarray) -> Difference | None:
    """other − reference over the expressions at `index` that both scored (None if there are none), with the
    resamples of `name` (a split, or "overall") of the ground-truth version."""
    both = index[np.isfinite(reference[index]) & np.isfinite(other[index])]
    if not len(both):
        return None
    plan = design(name, [layout.keys[i] for i in both], gt_version, samples=phase.bootstrap_samples)
    test = paired_test(other[both], reference[both], plan)
    return Difference(test.difference, (test.low, test.high), test.p_value, test.n_expressions,
                      int(plan.sizes.shape[0]), test.p_value < phase.tie_level)


def _split_comparison(phase: Phase, layout: _Layout, gt_version: str, split: str, scores: list[Score],
                      matrices: list[np.ndarray]) -> SplitComparison:
    index = layout.index(split)
    first = matrices[0]
    return SplitComparison(
        split=split, scores=[s.metrics() for s in scores], ci=[s.ci or {} for s in scores],
        n_expressions=[s.n_expressions for s in scores],
        differences=[{m: _paired(phase, layout, gt_version, split, index, first[j], other[j])
                      for j, m in enumerate(METRICS)} for other in matrices[1:]])


def _trait_comparison(phase: Phase, layout: _Layout, gt_version: str, spec: TraitSpec, matrices: list[np.ndarray],
                      primary: int, small_shown: bool) -> TraitComparison:
    everything = layout.index(OVERALL)
    buckets, hidden = _visible_buckets(phase, layout.buckets(spec.name, everything), small_shown)
    names = layout.names(spec.name)
    first = matrices[0][primary]
    differences = [[_paired(phase, layout, gt_version, OVERALL, everything[names == b.label], first, other[primary])
                    for b in buckets] for other in matrices[1:]]
    return TraitComparison(spec.name, spec.label, buckets, hidden, differences)


def _videos(layout: _Layout, matrices: list[np.ndarray], primary: int) -> list[list[VideoDifference]]:
    """Per submission after the first: its TOP_VIDEOS videos by |mean difference| on the primary metric."""
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, key in enumerate(layout.keys):
        groups[key].append(i)
    first = matrices[0][primary]
    out = []
    for other in (m[primary] for m in matrices[1:]):
        found = []
        for (split, video), members in groups.items():
            where = np.asarray(members)
            where = where[np.isfinite(first[where]) & np.isfinite(other[where])]
            if len(where):
                a, b = 100.0 * float(first[where].mean()), 100.0 * float(other[where].mean())
                found.append(VideoDifference(split, video, int(len(where)), a, b, b - a))
        found.sort(key=lambda v: (-abs(v.difference), v.split, v.video))
        out.append(found[:TOP_VIDEOS])
    return out

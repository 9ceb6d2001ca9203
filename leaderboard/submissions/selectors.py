"""Reads for submissions, quotas and leaderboards, and the one rule of who may see or do what with a submission.

Ranking rule (the server computes ranks; clients never do):
- one row per team, chosen by the phase's rule: its best finished submission by the primary
  metric on this board (ties: the earlier submission), or its latest finished submission;
- rows are ordered by the sort metric (the primary metric unless another is asked for), highest
  first; a value within 1e-6 (in percent) of the ranked row above it ties with that row and
  shares its rank (1, 2, 2, 4); within a tie the earlier submission is listed first;
- a row without a value for the metric comes last, without a rank;
- baseline entries are listed in score order with a badge but take no rank and no team's place; each
  says where it comes from (`baseline`: a reference runner run here, an organizer's upload, or numbers
  reported by a paper, which only boards that ask for them list, with only the metrics the paper
  gives); of the runs of one runner on a phase only the newest scored one is listed;
- hidden submissions, submissions the team keeps private, and failed, cancelled or never-scored
  ones are left out; a submission being rescored keeps its previous scores on the board (marked
  `rescoring`) until the new attempt replaces them, and leaves the board if that attempt fails (its
  old scores were made against what the phase no longer scores with); a private board shows no rows
  to anyone but organizers until its reveal time.

The rules are applied when a board's data changes, not when it is read: boards.py stores their result
(BoardRow) and the interfaces serve it (board_get, through board_cache.py).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import math
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from leaderboard.accounts.models import Team
from leaderboard.accounts.selectors import is_member
from leaderboard.challenges.permissions import Can, organizer_can
from leaderboard.baselines import selectors as baselines
from leaderboard.baselines.models import ReportedResult
from leaderboard.challenges.models import SPLIT_ORDER, Phase
from scoring import METRICS
from scoring.ladder import ladder_score

from .models import BoardRow, Disqualification, Score, ScoreHistory, Submission, Upload

TIE_TOLERANCE = 1e-6  # percent
Viewer = AbstractBaseUser | AnonymousUser


# --- who may see and do what -------------------------------------------------------------------


@dataclass(frozen=True)
class Access:
    """What one user may see of, and do with, one submission. Every interface asks this, and only this.

    view         the submission exists for them (otherwise it is answered as missing, so existence
                 does not leak): its team and organizers always, anyone else only while it is on a
                 revealed public board
    diagnostics  the team's own view: failure reason and problems, warnings, timings, file, submitter
    details      per-video results: organizers always, the team only where the phase allows it and the
                 scores are not the Ladder's (per-video means would give the exact score away)
    cancel       stop it: its team or an organizer, while it is not finished
    set_public   show it on or keep it off the public board: its team, not for a baseline, and only
                 while it can be on a board (active or finished; a failed or cancelled one never is)
    edit         change the method name, description and links: its team
    exact_scores the exact scores, their intervals, their history and the receipt: organizers always, and a
                 baseline's (the boards show baselines exactly); anyone else unless the phase runs the Ladder
                 and has not ended (then only the team's Ladder score: visible_scores)
    """

    view: bool
    diagnostics: bool
    details: bool
    cancel: bool
    set_public: bool
    edit: bool
    exact_scores: bool


def is_on_public_board(*, submission: Submission, now: dt.datetime | None = None) -> bool:
    """Whether the submission is listed on its phase's public boards (what leaderboard_rows would show)."""
    listed = (submission.status == Submission.Status.FINISHED and not submission.hidden
              and (submission.is_public or submission.is_baseline))
    return listed and submission.phase.is_revealed(now or timezone.now())


def submission_access(*, submission: Submission, user: Viewer, now: dt.datetime | None = None) -> Access:
    """The one answer to "what may this user see of, and do with, this submission" (see Access)."""
    challenge_id = submission.phase.challenge_id
    organizer = organizer_can(user, challenge_id, Can.VIEW)
    team = is_member(user=user, team=submission.team)
    manages = organizer or team
    exact = organizer or submission.is_baseline or not submission.phase.ladder_active(now)
    return Access(
        view=manages or is_on_public_board(submission=submission, now=now),
        diagnostics=manages,
        details=organizer or (team and submission.phase.show_expression_details and exact),
        cancel=(team or organizer_can(user, challenge_id, Can.MODERATE)) and submission.status in Submission.ACTIVE,
        set_public=team and not submission.is_baseline
        and submission.status in (*Submission.ACTIVE, Submission.Status.FINISHED),
        edit=team,
        exact_scores=exact,
    )


# --- the Ladder (scoring/ladder.py): what is shown instead of exact scores while a phase runs it ----------


def ladder_notice(*, phase: Phase, now: dt.datetime | None = None) -> str:
    """The sentence every interface shows beside the Ladder's scores ("" when the phase does not run it now)."""
    if not phase.ladder_active(now):
        return ""
    when = f"on {phase.ends_at:%Y-%m-%d %H:%M} UTC" if phase.ends_at else "(no end date is set yet)"
    return (f"This phase uses the Ladder: exact scores are revealed when the phase ends {when}. Until then a "
            f"team's shown {phase.primary_metric} changes only when a submission beats it by more than "
            f"{phase.ladder_step:g} points, and is rounded to a multiple of {phase.ladder_step:g}.")


def ladder_scores(*, phase: Phase, team_id: int | None) -> dict[str, float | None]:
    """The team's Ladder score per board (split) of the phase, as its board rows show it (board_entries: over
    its submissions on the public board, in submission order); a split where it has no row is missing."""
    if team_id is None:
        return {}
    rows = BoardRow.objects.filter(phase=phase, team_id=team_id, is_baseline=False).values_list(
        "split", phase.primary_metric)
    return dict(rows)


def visible_scores(*, submission: Submission, exact_scores: bool) -> dict[str, dict[str, float | None]]:
    """The submission's scores per split as a viewer may see them (`exact_scores`: their Access.exact_scores):
    the exact ones (scores_by_split), or else the team's Ladder score as the primary metric and nothing else."""
    exact = scores_by_split(submission=submission)
    if exact_scores:
        return exact  # type: ignore[return-value]
    phase = submission.phase
    shown = ladder_scores(phase=phase, team_id=submission.team_id)
    return {split: {m: shown.get(split) if m == phase.primary_metric else None for m in METRICS} for split in exact}


def small_buckets_shown(*, details: Iterable[bool]) -> bool:
    """The test set's leak rule, beside Access: a trait bucket with fewer expressions than the phase's
    min_bucket_size is shown only to a viewer who may see the per-video details (Access.details) of every
    submission involved: organizers always, a team for its own submissions where the phase allows details."""
    found = list(details)
    return bool(found) and all(found)


def standing_disqualification(*, phase: Phase, team: Team | None) -> Disqualification | None:
    """The team's standing disqualification from the phase, if any (admission, the boards and the team's pages)."""
    if team is None:
        return None
    return Disqualification.objects.filter(phase=phase, team=team, lifted_at__isnull=True).first()


def team_disqualifications(*, team: Team) -> list[Disqualification]:
    """The team's standing disqualifications, with their phases (what its pages tell it)."""
    return list(Disqualification.objects.filter(team=team, lifted_at__isnull=True).select_related("phase"))


def upload_is_owned_by(*, upload: Upload, user: Viewer) -> bool:
    """An upload is its uploader's (and its challenge's organizers'): nobody else may see, complete or abort it."""
    return bool(user.is_authenticated and (upload.user_id == user.pk
                                           or organizer_can(user, upload.phase.challenge_id, Can.MODERATE)))


# --- quotas ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Quota:
    """What is left of a team's quota in a phase; None means unlimited."""

    per_day: int | None
    per_day_left: int | None
    total: int | None
    total_left: int | None
    resets_at: dt.datetime  # start of the next UTC day, when the daily count starts over

    @property
    def which(self) -> str | None:
        """"total" or "daily": which limit is used up (the total first: a new day does not lift it)."""
        if self.total_left == 0:
            return "total"
        return "daily" if self.per_day_left == 0 else None


def day_start(now: dt.datetime) -> dt.datetime:
    return now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def quota_for(*, phase: Phase, team_id: int | None, now: dt.datetime | None = None) -> Quota:
    """Failed and cancelled submissions use no quota, but for a file that crashed the scorer, and in a phase
    that sets quota_counts_failed a file that failed on its problems (see Submission.counted); baselines (no
    team) have none."""
    now = now or timezone.now()
    start = day_start(now)
    counted = Submission.objects.filter(Submission.counted(), phase=phase, team_id=team_id)
    today = counted.filter(submitted_at__gte=start).count() if phase.max_per_day is not None else 0
    total = counted.count() if phase.max_total is not None else 0
    return Quota(
        per_day=phase.max_per_day,
        per_day_left=None if phase.max_per_day is None else max(0, phase.max_per_day - today),
        total=phase.max_total,
        total_left=None if phase.max_total is None else max(0, phase.max_total - total),
        resets_at=start + dt.timedelta(days=1),
    )


# --- leaderboards ------------------------------------------------------------------------------
#
# The rules are computed here once, from the scores: `board_entries` chooses the rows of a phase's
# boards and `rank_rows` orders and ranks them. boards.board_refresh writes what they give into
# BoardRow whenever a board's data changes; the interfaces serve `board_get`, which reads only those
# rows. `leaderboard_rows` is the same computation done live (the reference the stored rows must equal).


@dataclass(frozen=True)
class LeaderboardRow:
    rank: int | None
    team: str | None
    team_id: int | None
    method: str
    method_url: str
    code_url: str
    is_baseline: bool
    scores: dict[str, float | None]  # a reported row has only the metrics its source gives
    n_expressions: int | None  # None: a reported row (no submission)
    submitted_at: dt.datetime | None
    submission_id: int | None
    # None for a team's row; for a baseline {"kind": "runner", "runner", "version", "run"},
    # {"kind": "uploaded", ...} or {"kind": "reported", "runner": None, "version": None, "source", "citation"}
    baseline: dict[str, object] | None = None
    # True while the submission is scored again: the scores are its previous attempt's until the new one is in.
    rescoring: bool = False
    flagged: bool = False  # flagged by the organizers (moderation.py): listed, with a mark
    # The statistics of a stored row (board_stats.py), not part of the ranking (live rows have none):
    # the 95 % intervals of its scores, the rank of the first row of its tie group and the ranks it is tied with.
    ci: dict[str, list[float]] | None = field(default=None, compare=False)
    tie_group: int | None = field(default=None, compare=False)
    tied_with: tuple[int, ...] = field(default=(), compare=False)
    position: int | None = field(default=None, compare=False)  # in the stored board (primary metric order)

    @property
    def is_reported(self) -> bool:
        return self.baseline is not None and self.baseline.get("kind") == "reported"


@dataclass(frozen=True)
class Leaderboard:
    phase: Phase
    split: str
    metric: str
    rows: tuple[LeaderboardRow, ...]
    visible: bool
    reveal_at: dt.datetime | None

    @property
    def ladder_notice(self) -> str:
        """Beside a board whose team rows are the Ladder's: what they are, and when the exact ones come."""
        return ladder_notice(phase=self.phase)

    @property
    def message(self) -> str:
        if self.visible:
            return "" if self.rows else "No scored submissions yet."
        if self.reveal_at:
            return f"This leaderboard is private until {self.reveal_at:%Y-%m-%d %H:%M} UTC."
        return "This leaderboard is private."


def board_metric(*, phase: Phase, metric: str | None) -> str:
    """The metric a board is sorted by: the one asked for, else the phase's primary metric."""
    metric = metric or phase.primary_metric
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}")
    return metric


def board_is_visible(*, phase: Phase, viewer: Viewer | None, now: dt.datetime | None = None) -> bool:
    """A private board shows its rows to its challenge's organizers only until its reveal time (checked when it is
    served)."""
    return phase.is_revealed(now or timezone.now()) or organizer_can(viewer, phase.challenge_id, Can.VIEW)


def leaderboard_rows(
    *,
    phase: Phase,
    split: str,
    metric: str | None = None,
    viewer: AbstractBaseUser | AnonymousUser | None = None,
    now: dt.datetime | None = None,
    include_reported: bool = False,
) -> Leaderboard:
    """A board's rows, ranked (see the module's rules), computed from the scores now. `include_reported`:
    also the numbers imported from papers. Interfaces serve `board_get` (the same rows, materialized)."""
    metric = board_metric(phase=phase, metric=metric)
    if not board_is_visible(phase=phase, viewer=viewer, now=now):
        return Leaderboard(phase, split, metric, (), False, phase.reveal_at)
    rows = board_entries(phase=phase, splits=(split,), include_reported=include_reported)[split]
    return Leaderboard(phase, split, metric, rank_rows(rows, metric), True, phase.reveal_at)


_ON_BOARD = [Submission.Status.FINISHED, *Submission.ACTIVE]
# One tuple per score: what choosing a team's row needs, and the numbers the row shows. What else a row
# shows is read for the chosen submissions only (_DETAILS).
_SCORE_FIELDS = ("split", "submission_id", "submission__team_id", "submission__is_baseline",
                 "submission__is_public", *METRICS, "n_expressions")
_FIRST_METRIC = _SCORE_FIELDS.index(METRICS[0])
_DETAILS = ("pk", "team__name", "method_name", "method_url", "code_url", "submitted_at", "status", "flagged")
_IDS_PER_QUERY = 900  # under SQLite's oldest limit on a query's parameters


def _metric_value(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def board_entries(*, phase: Phase, splits: tuple[str, ...] = tuple(SPLIT_ORDER),
                  include_reported: bool = True, now: dt.datetime | None = None) -> dict[str, list[LeaderboardRow]]:
    """The rows of the phase's boards `splits`, unranked: each team's row chosen by the phase's rule, the
    baselines on the board, and (`include_reported`) the reported rows. One query for the scores of every
    board, as plain tuples: a refresh of a phase with 10 000 submissions builds only the rows it keeps.

    While the phase runs the Ladder (at `now`), a team's row is the Ladder's instead (_ladder_rows)."""
    laddered = phase.ladder_active(now)
    # Scores exist only once an attempt finished; an active submission that has them is being rescored.
    scores = (Score.objects.filter(split__in=splits, submission__phase=phase, submission__status__in=_ON_BOARD,
                                   submission__hidden=False)
              .order_by("submission__submitted_at", "submission__id").values_list(*_SCORE_FIELDS))
    superseded = baselines.superseded_baselines(phase=phase)
    # A disqualified team's rows leave the phase's boards until it is reinstated (moderation.py).
    disqualified = set(Disqualification.objects.filter(phase=phase, lifted_at__isnull=True)
                       .values_list("team_id", flat=True))
    primary = _FIRST_METRIC + METRICS.index(phase.primary_metric)
    chosen: dict[str, list[tuple]] = {split: [] for split in splits}
    per_team: dict[tuple[str, int], list[tuple]] = defaultdict(list)
    for score in scores:
        split, submission_id, team_id, is_baseline, is_public = score[:5]
        if is_baseline:
            if submission_id not in superseded:
                chosen[split].append(score)
        elif team_id is not None and is_public and team_id not in disqualified:
            per_team[(split, team_id)].append(score)
    ladder_shown: dict[int, float | None] = {}  # submission id -> the Ladder's score, on a team's row
    for (split, _), candidates in per_team.items():
        if laddered:
            row, ladder_shown[row[1]] = _ladder_choice(candidates, primary, phase.ladder_step)
            chosen[split].append(row)
        elif phase.ranking_rule == Phase.Rule.LATEST:
            chosen[split].append(candidates[-1])
        else:
            # max() keeps the first of equal values, and candidates are oldest first.
            chosen[split].append(max(candidates, key=lambda s: (_metric_value(s[primary]) is not None,
                                                                _metric_value(s[primary]) or 0.0)))

    ids = sorted({score[1] for rows in chosen.values() for score in rows})
    details = {row[0]: row[1:] for start in range(0, len(ids), _IDS_PER_QUERY)
               for row in Submission.objects.filter(pk__in=ids[start:start + _IDS_PER_QUERY]).values_list(*_DETAILS)}
    provenance = baselines.baseline_provenance(submission_ids={s[1] for rows in chosen.values() for s in rows
                                                               if s[3]})
    entries = {split: [_submission_row(score, details[score[1]], provenance) for score in rows]
               for split, rows in chosen.items()}
    if laddered:
        entries = {split: [_laddered(row, ladder_shown[row.submission_id], phase.primary_metric)
                           if not row.is_baseline else row for row in rows] for split, rows in entries.items()}
    if include_reported:
        for split in splits:
            entries[split] += [_reported_row(result, split)
                               for result in baselines.reported_for_board(phase=phase, split=split)]
    return entries


def _ladder_choice(candidates: list[tuple], primary: int, step: float) -> tuple[tuple, float | None]:
    """A team's row under the Ladder: the submission whose score set the Ladder's shown score (its last
    without any score: the latest), and that shown score. `candidates` are in submission order."""
    shown = ladder_score([_metric_value(c[primary]) for c in candidates], step)
    return candidates[-1 if shown.setter is None else shown.setter], shown.shown


# What a team's row under the Ladder leaves empty: exact numbers, or what is computed from them.
_LADDER_HIDES = ("ci", "tie_group")


def _laddered(row: LeaderboardRow, shown: float | None, primary: str) -> LeaderboardRow:
    """The row as the Ladder shows it: the primary metric is the Ladder's score, every other number empty."""
    hidden = {name: None for name in _LADDER_HIDES if name in {f.name for f in dataclasses.fields(row)}}
    return dataclasses.replace(row, scores={m: shown if m == primary else None for m in METRICS}, **hidden)


def _submission_row(score: tuple, details: tuple, provenance: dict[int, dict[str, object]]) -> LeaderboardRow:
    _, submission_id, team_id, is_baseline, _, *values, n_expressions = score
    team_name, method, method_url, code_url, submitted_at, status, flagged = details
    return LeaderboardRow(
        rank=None, team=team_name, team_id=team_id, method=method, method_url=method_url, code_url=code_url,
        is_baseline=is_baseline, scores=dict(zip(METRICS, values, strict=True)), n_expressions=n_expressions,
        submitted_at=submitted_at, submission_id=submission_id,
        baseline=provenance.get(submission_id) if is_baseline else None, rescoring=status in Submission.ACTIVE,
        flagged=flagged)


def _reported_row(result: ReportedResult, split: str) -> LeaderboardRow:
    given = result.values[split]
    return LeaderboardRow(
        rank=None, team=None, team_id=None, method=result.method, method_url=result.source_url, code_url="",
        is_baseline=True, scores={m: given.get(m) for m in METRICS}, n_expressions=None, submitted_at=None,
        submission_id=None, baseline={"kind": "reported", "runner": None, "version": None,
                                      "source": result.source_url, "citation": result.citation})


def _row_value(row: LeaderboardRow, metric: str) -> float | None:
    return _metric_value(row.scores.get(metric))


_NEVER = dt.datetime.max.replace(tzinfo=dt.UTC)  # reported rows (no submission) come after submissions


def rank_rows(rows: list[LeaderboardRow], metric: str) -> tuple[LeaderboardRow, ...]:
    """Rows in board order by `metric`, team rows ranked (baselines and rows without a value take no rank)."""

    def when(row: LeaderboardRow) -> tuple:
        return (row.submitted_at or _NEVER, row.submission_id or 0, row.method)

    def order(row: LeaderboardRow) -> tuple:
        value = _row_value(row, metric)
        return (value is None, -(value or 0.0), *when(row))

    # Sorting on exact values and then tying neighbours within the tolerance would list a later
    # submission first when two values straddle each other by less than the tolerance; group the
    # near-equal values first, then order each group by submission time.
    rows = sorted(rows, key=order)
    grouped: list[list[LeaderboardRow]] = []
    for row in rows:
        value = _row_value(row, metric)
        head = _row_value(grouped[-1][0], metric) if grouped else None
        if grouped and value is not None and head is not None and abs(head - value) <= TIE_TOLERANCE:
            grouped[-1].append(row)
        else:
            grouped.append([row])
    ordered = [row for group in grouped for row in sorted(group, key=when)]

    ranked_rows: list[LeaderboardRow] = []
    ranked, previous, previous_rank = 0, None, None
    for row in ordered:
        value = _row_value(row, metric)
        rank = None
        if not row.is_baseline and value is not None:
            ranked += 1
            tied = previous is not None and abs(previous - value) <= TIE_TOLERANCE
            rank = previous_rank if tied else ranked
            if not tied:
                previous = value
            previous_rank = rank
        ranked_rows.append(dataclasses.replace(row, rank=rank))
    return tuple(ranked_rows)


def board_get(
    *,
    phase: Phase,
    split: str,
    metric: str | None = None,
    viewer: AbstractBaseUser | AnonymousUser | None = None,
    now: dt.datetime | None = None,
    include_reported: bool = False,
) -> Leaderboard:
    """The board as served: leaderboard_rows' answer, read from the materialized rows (BoardRow) alone.

    The rows are stored in order by the primary metric; another metric, or the board without its
    reported rows, is ordered again here by rank_rows (a board has one row per team, so this is small)."""
    metric = board_metric(phase=phase, metric=metric)
    if not board_is_visible(phase=phase, viewer=viewer, now=now):
        return Leaderboard(phase, split, metric, (), False, phase.reveal_at)
    rows = [_stored_row(row) for row in BoardRow.objects.filter(phase=phase, split=split).order_by("position")]
    if include_reported and metric == phase.primary_metric:
        return Leaderboard(phase, split, metric, _with_ties(tuple(rows), True), True, phase.reveal_at)
    if not include_reported:
        rows = [row for row in rows if not row.is_reported]
    ranked = _with_ties(rank_rows(rows, metric), metric == phase.primary_metric)
    return Leaderboard(phase, split, metric, ranked, True, phase.reveal_at)


def _with_ties(rows: tuple[LeaderboardRow, ...], primary: bool) -> tuple[LeaderboardRow, ...]:
    """Stored tie groups (by the position of their first row) as the ranks served. Groups come from the tests
    on the primary metric: a board ordered by another metric shows none."""
    if not primary:
        return tuple(dataclasses.replace(row, tie_group=None, tied_with=()) for row in rows)
    rank_at = {row.position: row.rank for row in rows}
    members: dict[int, list[tuple[int | None, int]]] = defaultdict(list)  # group -> (position, rank) of its rows
    for row in rows:
        if row.tie_group is not None and row.rank is not None:
            members[row.tie_group].append((row.position, row.rank))
    out = []
    for row in rows:
        if row.tie_group is None or row.rank is None:
            out.append(dataclasses.replace(row, tie_group=None, tied_with=()))
            continue
        others = tuple(sorted(rank for position, rank in members[row.tie_group] if position != row.position))
        out.append(dataclasses.replace(row, tie_group=rank_at.get(row.tie_group), tied_with=others))
    return tuple(out)


def _stored_row(row: BoardRow) -> LeaderboardRow:
    values = (row.T_recall, row.IoU_all, row.IoU_gold, row.IoU_gold_pred)
    return LeaderboardRow(
        rank=row.rank, team=row.team_name if row.team_id is not None else None, team_id=row.team_id,
        method=row.method, method_url=row.method_url, code_url=row.code_url, is_baseline=row.is_baseline,
        scores=dict(zip(METRICS, values, strict=True)), n_expressions=row.n_expressions,
        submitted_at=row.submitted_at, submission_id=row.submission_id, baseline=row.baseline, rescoring=row.rescoring,
        flagged=row.flagged, ci=row.ci, tie_group=row.tie_group, position=row.position)


def submission_list(*, phase: Phase, team: Team) -> QuerySet[Submission]:
    return (Submission.objects.filter(phase=phase, team=team).select_related("team")
            .prefetch_related(Prefetch("scores", queryset=Score.objects.order_by("id")))
            .order_by("-submitted_at", "-id"))


def scores_by_split(*, submission: Submission) -> dict[str, dict[str, float]]:
    order = ["short", "medium", "long", "overall"]
    rows = sorted(submission.scores.all(), key=lambda s: order.index(s.split) if s.split in order else 99)
    return {score.split: score.metrics() for score in rows}


def intervals_by_split(*, submission: Submission) -> dict[str, dict[str, list[float]]]:
    """The stored 95% intervals per split ({} for a split with too few videos, left out)."""
    order = ["short", "medium", "long", "overall"]
    rows = sorted(submission.scores.all(), key=lambda s: order.index(s.split) if s.split in order else 99)
    return {score.split: score.ci for score in rows if score.ci}


@dataclass(frozen=True)
class VideoResult:
    split: str
    video: str
    expressions: int
    missing: int
    scores: dict[str, float]  # percent, mean over the video's expressions


def per_video_results(*, submission: Submission) -> list[VideoResult]:
    """Per-video means (percent) from the stored per-expression results; [] if there are none."""
    if not submission.details:
        return []
    with submission.details.open("rb") as handle:
        rows = list(csv.DictReader(io.TextIOWrapper(handle, encoding="utf-8")))
    grouped: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        grouped[(row["split"], row["video"])].append(row)
    return [
        VideoResult(split, video, len(items), sum(int(r["missing"]) for r in items),
                    {m: 100 * math.fsum(float(r[m]) for r in items) / len(items) for m in METRICS})
        for (split, video), items in grouped.items()
    ]


def submission_get(*, submission_id: int) -> Submission | None:
    return (Submission.objects.select_related("phase__challenge", "team", "user")
            .prefetch_related("scores").filter(pk=submission_id).first())


def upload_get(*, upload_id: uuid.UUID | str) -> Upload | None:
    """An upload by id (whose it is, the upload services check)."""
    return Upload.objects.select_related("phase__challenge", "submission").filter(pk=upload_id).first()


@dataclass(frozen=True)
class ScoreSet:
    """The scores one attempt of a submission gave, per split, and what made them."""

    attempt: int
    scored_at: dt.datetime
    scorer_version: str
    gt_version: str
    scores: dict[str, dict[str, float]]  # split -> metrics, in board order


def score_history(*, submission: Submission) -> list[ScoreSet]:
    """Every score set the submission ever had, newest first (the first is the one on the boards, unless a
    newer attempt is being scored or failed). Shown to whoever may see the submission's scores."""
    grouped: dict[int, list[ScoreHistory]] = defaultdict(list)
    for row in submission.score_history.order_by("-attempt", "id"):
        grouped[row.attempt].append(row)
    order = {code: index for index, code in enumerate(SPLIT_ORDER)}
    history = []
    for attempt, rows in grouped.items():
        rows.sort(key=lambda r: order.get(r.split, 99))
        history.append(ScoreSet(attempt=attempt, scored_at=max(r.scored_at for r in rows),
                                scorer_version=rows[0].scorer_version, gt_version=rows[0].gt_version,
                                scores={r.split: r.metrics() for r in rows}))
    return history

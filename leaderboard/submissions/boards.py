"""Writes that keep the materialized boards (Board, BoardRow) equal to what the ranking rules give.

`board_refresh` rebuilds a phase's boards with the ranking code (selectors.board_entries, rank_rows) and
stores them in board order by the primary metric. Every write that can change what a board lists calls
`board_changed(phase_id=...)` inside its own transaction, so a board is never behind a committed change
and a rolled-back change leaves it as it was:
- an attempt that ends (finished, failed, cancelled): signals.announce_end, which every such path calls;
- a rescore, a team's public flag, an organizer's hidden, flagged or baseline flag, a disqualification and
  its lifting, the method fields (services, moderation);
- reported rows imported (baselines.reported);
- through the model signals connected below: a phase saved (ranking rule, primary metric, ground truth),
  a team renamed, a reported row saved or deleted, a submission or a baseline run deleted.
Time is not a change: a private board's reveal is checked when it is served (selectors.board_is_visible).
One moment is, and board_current sees it when a board is next asked for: the end of a phase that runs the
Ladder, after which its boards show the exact scores (a board last built before that end is rebuilt; the
Ladder's state is part of the digest, so that rebuild bumps the version and no rendering of the Ladder's
board is served after the end).

A rebuild that gives the rows already stored writes nothing and keeps the version, so the rendered
boards in the cache (board_cache.py) stay valid; one that changes a row bumps it.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Iterator
from typing import Any

from django.db import transaction
from django.db.models import Model, QuerySet
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from leaderboard.accounts.models import Team
from leaderboard.baselines.models import BaselineRun, ReportedResult
from leaderboard.challenges.models import Phase
from scoring import METRICS

from .board_stats import board_statistics
from .models import Board, BoardRow, Submission
from .selectors import LeaderboardRow, board_entries, rank_rows

log = logging.getLogger(__name__)

# The phases whose rebuild waits for the end of the current boards_deferred() block (None: no block).
_deferred: contextvars.ContextVar[set[int] | None] = contextvars.ContextVar("boards_deferred", default=None)


def board_changed(*, phase_id: int) -> None:
    """What the phase's boards list may have changed: rebuild them now, in the caller's transaction (at the
    end of the enclosing boards_deferred() block, if there is one)."""
    pending = _deferred.get()
    if pending is not None:
        pending.add(phase_id)
    else:
        board_refresh(phase_id=phase_id)


def submission_board_changed(*, submission_id: int) -> None:
    """board_changed for the phase of this submission."""
    phase_id = Submission.objects.filter(pk=submission_id).values_list("phase_id", flat=True).first()
    if phase_id is not None:
        board_changed(phase_id=phase_id)


@contextlib.contextmanager
def boards_deferred() -> Iterator[None]:
    """Many changes, one rebuild per phase when the block ends (a phase's rescore, an import, a bulk delete)."""
    if _deferred.get() is not None:  # nested: the outer block rebuilds
        yield
        return
    pending: set[int] = set()
    token = _deferred.set(pending)
    failed = False
    try:
        yield
    except BaseException:
        failed = True
        raise
    finally:
        _deferred.reset(token)
        # After an error inside a transaction everything rolls back: nothing to rebuild. Changes committed
        # one by one before the error (no enclosing transaction) are rebuilt all the same.
        if not (failed and transaction.get_connection().in_atomic_block):
            for phase_id in sorted(pending):
                board_refresh(phase_id=phase_id)


def board_refresh(*, phase_id: int) -> Board | None:
    """Rebuild every board of the phase from its scores; bump the version when a row changed. None when
    there is no such phase. Refreshes of one phase wait for each other (a row lock on its Board)."""
    started = time.perf_counter()
    with transaction.atomic():
        if not Phase.objects.filter(pk=phase_id).exists():
            return None
        Board.objects.get_or_create(phase_id=phase_id)
        board = Board.objects.select_for_update().get(phase_id=phase_id)
        # Read after the lock: a change committed by the refresh we waited for is seen.
        phase = Phase.objects.select_related("ground_truth").get(pk=phase_id)
        now = timezone.now()  # the moment the rows are of (the Ladder's state), kept as refreshed_at
        laddered = phase.ladder_active(now)
        rows = [(split, position, row) for split, entries in board_entries(phase=phase, now=now).items()
                for position, row in enumerate(rank_rows(entries, phase.primary_metric))]
        statistics = board_statistics(phase=phase, rows=rows)
        if laddered:  # exact intervals and tests would tell what the Ladder hides: a baseline keeps its interval
            statistics = {(split, position): (statistics[(split, position)][0] if row.is_baseline else None, None)
                          for split, position, row in rows}
        digest = _digest(rows, statistics, laddered=laddered)
        if board.version and digest == board.digest:
            if _ladder_ended_since(phase, board.refreshed_at, now):
                board.refreshed_at = now  # seen after the end: board_current need not rebuild it again
                board.save(update_fields=["refreshed_at"])
            return board
        BoardRow.objects.filter(phase_id=phase_id).delete()
        BoardRow.objects.bulk_create([_stored(phase, *row, *statistics[row[:2]]) for row in rows], batch_size=1000)
        board.version += 1
        board.stamp = secrets.token_hex(8)
        board.digest = digest
        board.refreshed_at = now
        board.refresh_seconds = time.perf_counter() - started
        board.save()
    log.debug("boards of phase %s: version %s, %s rows in %.3f s", phase_id, board.version, len(rows),
              board.refresh_seconds)
    return board


def board_current(*, phase: Phase) -> tuple[int, str]:
    """The version and stamp of the phase's boards; boards never built (a phase older than them) are built
    first. Every request for a board asks it: read with the phase when it was (select_related "board"),
    else in one small query."""
    if Phase.board.is_cached(phase):
        board = getattr(phase, "board", None)  # None: the phase has no Board row
        found = (board.version, board.stamp, board.refreshed_at) if board is not None and board.version else None
    else:
        found = (Board.objects.filter(phase_id=phase.pk, version__gt=0)
                 .values_list("version", "stamp", "refreshed_at").first())
    if found is None or _ladder_ended_since(phase, found[2], timezone.now()):
        board = board_refresh(phase_id=phase.pk)
        if board is None:
            raise Phase.DoesNotExist(f"phase {phase.pk} was deleted")
        found = (board.version, board.stamp, board.refreshed_at)
    return found[0], found[1]


def _ladder_ended_since(phase: Phase, refreshed_at: dt.datetime | None, now: dt.datetime) -> bool:
    """The phase runs the Ladder and has ended since its boards were last built (they show the Ladder's
    numbers, and must now show the exact ones)."""
    return (phase.ladder and phase.ends_at is not None and phase.ends_at <= now
            and (refreshed_at is None or refreshed_at < phase.ends_at))


def _stored(phase: Phase, split: str, position: int, row: LeaderboardRow, ci: dict | None,
            tie_group: int | None) -> BoardRow:
    return BoardRow(
        ci=ci, tie_group=tie_group,
        phase=phase, split=split, position=position, rank=row.rank, submission_id=row.submission_id,
        team_id=row.team_id, team_name=row.team or "", method=row.method, method_url=row.method_url,
        code_url=row.code_url, is_baseline=row.is_baseline, baseline=row.baseline,
        n_expressions=row.n_expressions, submitted_at=row.submitted_at, rescoring=row.rescoring,
        flagged=row.flagged,
        **{m: row.scores.get(m) for m in METRICS})


def _digest(rows: list[tuple[str, int, LeaderboardRow]],
            statistics: dict[tuple[str, int], tuple[dict | None, int | None]], *, laddered: bool = False) -> str:
    """sha256 of everything a served board shows of these rows (repr keeps NaN and every float digit), and
    of whether they are the Ladder's (a board says so)."""
    digest = hashlib.sha256(b"ladder\n" if laddered else b"")
    for split, position, row in rows:
        values = [split, position, row.rank, row.submission_id, row.team_id, row.team, row.method, row.method_url,
                  row.code_url, row.is_baseline, row.baseline, *(row.scores.get(m) for m in METRICS),
                  row.n_expressions, row.submitted_at, row.rescoring, row.flagged, *statistics[(split, position)]]
        digest.update(json.dumps([repr(v) if isinstance(v, float) else v for v in values], default=str,
                                 sort_keys=True).encode())
    return digest.hexdigest()


# --- changes seen through the models' signals (instance saves and deletes: the admin, the shell) ---------


def _own_delete(sender: type[Model], origin: object) -> bool:
    """The object itself (or a queryset of its kind) was deleted, not a phase or challenge above it, whose
    deletion takes the boards along: rebuilding those halfway through the cascade would write rows for a
    phase about to go."""
    return isinstance(origin, sender) or (isinstance(origin, QuerySet) and issubclass(origin.model, sender))


def _phase_saved(sender: type[Phase], instance: Phase, raw: bool = False, **kwargs: Any) -> None:
    if not raw:  # loaddata: the rows come as they are
        board_changed(phase_id=instance.pk)


def _team_saved(sender: type[Team], instance: Team, created: bool, raw: bool = False,
                update_fields: frozenset[str] | None = None, **kwargs: Any) -> None:
    if created or raw or (update_fields is not None and "name" not in update_fields):
        return  # a new team is on no board yet; an invite code is on none
    for phase_id in BoardRow.objects.filter(team=instance).values_list("phase_id", flat=True).distinct():
        board_changed(phase_id=phase_id)


def _reported_saved(sender: type[ReportedResult], instance: ReportedResult, raw: bool = False, **kwargs: Any) -> None:
    if not raw:
        board_changed(phase_id=instance.phase_id)


def _deleted(sender: type[Model], instance: Any, origin: object = None, **kwargs: Any) -> None:
    if _own_delete(sender, origin):
        board_changed(phase_id=instance.phase_id)


def connect_receivers() -> None:
    """Called once from the app's ready()."""
    post_save.connect(_phase_saved, sender=Phase, dispatch_uid="boards-phase-saved")
    post_save.connect(_team_saved, sender=Team, dispatch_uid="boards-team-saved")
    post_save.connect(_reported_saved, sender=ReportedResult, dispatch_uid="boards-reported-saved")
    for model in (ReportedResult, Submission, BaselineRun):
        post_delete.connect(_deleted, sender=model, dispatch_uid=f"boards-{model._meta.label_lower}-deleted")

"""Board snapshots: a public, numbered, never-changing copy of a phase's revealed boards that a paper can cite.

A snapshot is made from the materialized boards (BoardRow, what the board pages serve) under the lock that
board_refresh takes, so its rows are one version of the boards: per board (split) every row in board order
with its rank, statistical tie group, team, method and links, baseline provenance, the four metrics with their
95 % intervals, the expression count, the scorer and ground-truth versions of its scores, and the signed
receipt of the submission's scoring (Submission.receipt, {} where there is none). The JSON document is stored
as the exact bytes served, and its sha256 names it (the ETag, the citation); the CSV says the same rows, one
line per board row, with the receipt's key id and signature and the file's sha256.

When: an organizer takes one (admin action, `manage.py board_snapshot`), and the server takes one when a
private board is revealed or a phase ends (board_snapshots_take_due, a periodic task on `maintenance`). A
board that is still private, or whose phase runs the Ladder and has not ended (its board shows the Ladder's
rounded scores), is refused. A board unchanged since the last snapshot (same version, or the same rows) gives
that snapshot back: numbers are not spent on copies.

Who reads them: anyone who may see the phase's board exactly (snapshots_visible), for the pages and the API.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import logging
import math
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.db.models import F, OuterRef, Q, QuerySet, Subquery
from django.urls import reverse
from django.utils import timezone

from leaderboard.challenges.models import Phase
from leaderboard.challenges.permissions import Can, organizer_can
from leaderboard.challenges.selectors import phase_boards
from leaderboard.errors import ApplicationError, Conflict, NotAllowed
from leaderboard.lib.spreadsheet import spreadsheet_safe
from scoring import METRICS

from .boards import board_current
from .models import Board, BoardRow, BoardSnapshot, Score, Submission

log = logging.getLogger(__name__)

FORMAT = "egomask-board-snapshot/1"
CSV_COLUMNS = ["split", "position", "rank", "tie_group", "team", "method", "method_url", "code_url", "is_baseline",
               "baseline", "flagged", "rescoring", *METRICS,
               *(f"{metric}.ci_{end}" for metric in METRICS for end in ("low", "high")),
               "n_expressions", "submitted_at", "submission_id", "scorer_version", "gt_version", "file_sha256",
               "receipt_key_id", "receipt_signature"]
Viewer = AbstractBaseUser | AnonymousUser | None


# --- who reads them ---------------------------------------------------------------------------------------


def snapshots_public(*, phase: Phase, now: dt.datetime | None = None) -> bool:
    """Whether everyone may read the phase's snapshots now: its board is revealed and not under a running Ladder
    (and its challenge is published). Their responses may then be kept by shared caches."""
    now = now or timezone.now()
    return phase.challenge.is_published and phase.is_revealed(now) and not phase.ladder_active(now)


def snapshots_visible(*, phase: Phase, viewer: Viewer, now: dt.datetime | None = None) -> bool:
    """The one rule for reading a phase's snapshots: its organizers always, anyone else while they are public."""
    return snapshots_public(phase=phase, now=now) or organizer_can(viewer, phase.challenge_id, Can.VIEW)


def snapshot_list(*, phase: Phase) -> QuerySet[BoardSnapshot]:
    """The phase's snapshots, newest first, without their documents."""
    return phase.snapshots.defer("content", "csv").order_by("-number")


def snapshot_get(*, phase: Phase, number: int) -> BoardSnapshot | None:
    return phase.snapshots.filter(number=number).first()


def snapshot_latest_number(*, phase: Phase) -> int | None:
    return phase.snapshots.order_by("-number").values_list("number", flat=True).first()


def snapshot_path(*, phase: Phase, number: int, suffix: str = "json") -> str:
    """The snapshot's stable address on this site (suffix json or csv)."""
    name = "board_snapshot_json" if suffix == "json" else "board_snapshot_csv"
    return reverse(name, args=[phase.challenge.slug, phase.slug, number])


def snapshot_url(*, phase: Phase, number: int, suffix: str = "json") -> str:
    """The address to cite: SITE_URL and snapshot_path."""
    return settings.SITE_URL + snapshot_path(phase=phase, number=number, suffix=suffix)


def snapshot_latest_url(*, phase: Phase) -> str:
    """The address that redirects to the newest snapshot's JSON."""
    return settings.SITE_URL + reverse("board_snapshot_latest", args=[phase.challenge.slug, phase.slug])


def snapshot_title(*, phase: Phase, snapshot: BoardSnapshot) -> str:
    return (f"{phase.challenge.title}: {phase.name} leaderboard, snapshot {snapshot.number} "
            f"({snapshot.created_at.astimezone(dt.UTC):%Y-%m-%d})")


# --- taking one -------------------------------------------------------------------------------------------


def snapshot_refusal(*, phase: Phase, now: dt.datetime | None = None) -> str | None:
    """Why the phase's boards cannot be snapshotted now, in a sentence (None: they can)."""
    now = now or timezone.now()
    if not phase.is_revealed(now):
        when = f" until {phase.reveal_at.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC" if phase.reveal_at else ""
        return (f"The boards of {phase} are private{when}: a snapshot is public, so it is taken once they are "
                "revealed.")
    if phase.ladder_active(now):
        until = f" (it ends {phase.ends_at.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC)" if phase.ends_at else ""
        return (f"{phase} runs the Ladder and has not ended{until}: its boards show the Ladder's rounded scores, "
                "not the exact ones, so a snapshot is taken once the phase has ended.")
    return None


def board_snapshot_take(*, phase: Phase, by: AbstractBaseUser | None, reason: str = "",
                        now: dt.datetime | None = None) -> BoardSnapshot:
    """Snapshot the phase's boards as they are now, or give back the last snapshot if the boards have not changed
    since. `by`: the organizer who takes it (they need the right to configure the challenge), None for the
    server. NotAllowed or Conflict (with a sentence saying why) when it may not be taken."""
    if by is not None and not organizer_can(by, phase.challenge_id, Can.CONFIGURE):
        raise NotAllowed(f"Only an organizer of {phase.challenge.slug} who may configure it takes its board "
                         "snapshots.")
    now = now or timezone.now()
    refusal = snapshot_refusal(phase=phase, now=now)
    if refusal:
        raise Conflict(refusal)
    board_current(phase=phase)  # boards never built (an old phase) are built first, as serving does
    with transaction.atomic():
        # board_refresh holds this lock while it rewrites the rows: what is read below is one version.
        board = Board.objects.select_for_update().get(phase_id=phase.pk)
        last = phase.snapshots.order_by("-number").first()
        if last is not None and last.board_version == board.version:
            return last
        boards, versions = _boards(phase)
        rows_sha256 = _sha256(_dumps({"primary_metric": phase.primary_metric, "boards": boards}))
        if last is not None and last.rows_sha256 == rows_sha256:
            return last
        number = last.number + 1 if last is not None else 1
        snapshot = BoardSnapshot(phase=phase, number=number, created_at=now, created_by=by, reason=reason,
                                 board_version=board.version, rows_sha256=rows_sha256,
                                 gt_versions=versions["gt"], scorer_versions=versions["scorer"])
        snapshot.content = _dumps(_document(phase, snapshot, boards), indent=1)
        snapshot.sha256 = _sha256(snapshot.content)
        snapshot.csv = _csv(boards)
        snapshot.save()
    log.info("board snapshot %s of phase %s (boards version %s, sha256 %s)", number, phase.pk, board.version,
             snapshot.sha256)
    return snapshot


def _dumps(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, indent=indent)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value is not None else None


def _number(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value


def _document(phase: Phase, snapshot: BoardSnapshot, boards: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "title": snapshot_title(phase=phase, snapshot=snapshot),
        "url": snapshot_url(phase=phase, number=snapshot.number),
        "challenge": {"slug": phase.challenge.slug, "title": phase.challenge.title},
        "phase": {"id": phase.pk, "slug": phase.slug, "name": phase.name},
        "number": snapshot.number,
        "created_at": _iso(snapshot.created_at),
        "reason": snapshot.reason,
        "board_version": snapshot.board_version,
        "primary_metric": phase.primary_metric,
        "ranking_rule": phase.ranking_rule,
        "metrics_unit": "percent",
        "scorer_versions": snapshot.scorer_versions,
        "gt_versions": snapshot.gt_versions,
        "boards": boards,
    }


def _boards(phase: Phase) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """Every board of the phase, as stored (reported rows included, as the board pages show them), each row with
    its scores' versions, its file's sha256 and its receipt; and the versions seen."""
    stored = list(BoardRow.objects.filter(phase=phase).order_by("split", "position"))
    ids = sorted({row.submission_id for row in stored if row.submission_id is not None})
    submissions = {pk: (sha, receipt) for pk, sha, receipt in
                   Submission.objects.filter(pk__in=ids).values_list("pk", "file_sha256", "receipt")}
    made_by = {(pk, split): (scorer, gt) for pk, split, scorer, gt in
               Score.objects.filter(submission_id__in=ids).values_list("submission_id", "split", "scorer_version",
                                                                       "gt_version")}
    by_split: dict[str, list[dict[str, Any]]] = {}
    for row in stored:
        file_sha256, receipt = submissions.get(row.submission_id, (None, None))
        scorer, gt = made_by.get((row.submission_id, row.split), (None, None))
        by_split.setdefault(row.split, []).append({
            "position": row.position + 1, "rank": row.rank, "tie_group": row.tie_group,
            "team": row.team_name if row.team_id is not None else None, "method": row.method,
            "method_url": row.method_url, "code_url": row.code_url, "is_baseline": row.is_baseline,
            "baseline": row.baseline, "flagged": row.flagged, "rescoring": row.rescoring,
            "scores": {m: _number(getattr(row, m)) for m in METRICS}, "ci": row.ci,
            "n_expressions": row.n_expressions, "submitted_at": _iso(row.submitted_at),
            "submission_id": row.submission_id, "scorer_version": scorer, "gt_version": gt,
            "file_sha256": file_sha256, "receipt": (receipt or {}) if row.submission_id is not None else None,
        })
    boards = [{"split": split, "rows": by_split.get(split, [])} for split in phase_boards(phase=phase)]
    rows = [row for board in boards for row in board["rows"]]
    versions = {"scorer": sorted({r["scorer_version"] for r in rows if r["scorer_version"]}),
                "gt": sorted({r["gt_version"] for r in rows if r["gt_version"]})}
    return boards, versions


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return spreadsheet_safe(value)


def _baseline_cell(baseline: dict[str, Any] | None) -> str:
    """As on the board's CSV: "" for a team, runner:NAME:VERSION, uploaded, reported:SOURCE."""
    if baseline is None:
        return ""
    if baseline.get("kind") == "runner":
        return f"runner:{baseline.get('runner')}:{baseline.get('version')}"
    if baseline.get("kind") == "reported":
        return f"reported:{baseline.get('source')}"
    return str(baseline.get("kind"))


def _csv(boards: list[dict[str, Any]]) -> str:
    """One line per board row (CSV_COLUMNS); numbers with every digit the JSON has (repr)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for board in boards:
        for row in board["rows"]:
            ci = row["ci"] or {}
            receipt = row["receipt"] or {}
            writer.writerow([_cell(value) for value in (
                board["split"], row["position"], row["rank"], row["tie_group"], row["team"], row["method"],
                row["method_url"], row["code_url"], row["is_baseline"], _baseline_cell(row["baseline"]),
                row["flagged"], row["rescoring"], *(row["scores"][m] for m in METRICS),
                *((ci.get(m) or [None, None])[index] for m in METRICS for index in (0, 1)),
                row["n_expressions"], row["submitted_at"], row["submission_id"], row["scorer_version"],
                row["gt_version"], row["file_sha256"], receipt.get("key_id"), receipt.get("signature"))])
    return buffer.getvalue()


# --- the server's own: at a reveal, at the end of a phase --------------------------------------------------


def _due_event(phase: Phase, now: dt.datetime) -> tuple[dt.datetime, str] | None:
    """The latest of the phase's reveal and end that has passed, with the reason a snapshot then gives."""
    events = []
    if phase.visibility == Phase.Visibility.PRIVATE and phase.reveal_at is not None and phase.reveal_at <= now:
        events.append((phase.reveal_at, "taken by the server: the boards were revealed"))
    if phase.ends_at is not None and phase.ends_at <= now:
        events.append((phase.ends_at, "taken by the server: the phase ended"))
    return max(events) if events else None


def board_snapshots_due(*, now: dt.datetime | None = None) -> list[tuple[Phase, str]]:
    """The phases of published challenges whose reveal or end has passed with no snapshot since, and whose boards
    changed since their last snapshot (one taken before the event of an unchanged board shows it as it was then),
    each with the reason to record. One query."""
    now = now or timezone.now()
    latest = BoardSnapshot.objects.filter(phase=OuterRef("pk")).order_by("-number")
    candidates = (Phase.objects.filter(challenge__is_published=True)
                  .filter(Q(visibility=Phase.Visibility.PRIVATE, reveal_at__lte=now) | Q(ends_at__lte=now))
                  .select_related("challenge")
                  .annotate(last_at=Subquery(latest.values("created_at")[:1]),
                            last_version=Subquery(latest.values("board_version")[:1]),
                            current_version=F("board__version"))
                  .order_by("pk"))
    due = []
    for phase in candidates:
        event = _due_event(phase, now)
        if event is None or snapshot_refusal(phase=phase, now=now) is not None:
            continue  # ended but still private: its reveal makes it due
        if phase.last_at is not None and (phase.last_at >= event[0] or phase.last_version == phase.current_version):
            continue
        due.append((phase, event[1]))
    return due


def board_snapshots_take_due(*, now: dt.datetime | None = None) -> int:
    """Take the snapshots that are due (board_snapshots_due); how many were written. One phase that fails is
    logged and the others are taken."""
    written = 0
    for phase, reason in board_snapshots_due(now=now):
        before = snapshot_latest_number(phase=phase)
        try:
            snapshot = board_snapshot_take(phase=phase, by=None, reason=reason, now=now)
        except ApplicationError as exc:  # changed since it was found due (made private again, a Ladder started)
            log.warning("board snapshot of phase %s not taken: %s", phase.pk, exc.message)
            continue
        written += snapshot.number != before
    return written

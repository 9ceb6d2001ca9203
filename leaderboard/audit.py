"""The audit log of a challenge: every recorded change (django-simple-history) to the challenge, its phases,
ground truths and hosts, its submissions and disqualifications, newest first, one entry per changed field with
who, when, why, the old and the new value. Read by the admin's audit page and its CSV export (adminsite.py);
whoever may VIEW the challenge may read it (the caller checks, permissions.organizer_can).

Pairs of consecutive versions of one object are diffed in memory (HistoricalChanges.diff_against on rows read
in one query per model), so a long log costs one query per model, not one per entry.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.db.models import Model, QuerySet

from leaderboard.challenges.models import Challenge, GroundTruthBundle, Host, Phase
from leaderboard.submissions.models import Disqualification, Submission

# kind: (model, how its history rows are found for a challenge)
KINDS: dict[str, type[Model]] = {"challenge": Challenge, "phase": Phase, "ground truth": GroundTruthBundle,
                                 "host": Host, "submission": Submission, "disqualification": Disqualification}
ACTIONS = {"+": "created", "~": "changed", "-": "deleted"}
VALUE_MAX = 300  # characters of a value shown (a crash report, a terms text): the CSV keeps them whole


@dataclass(frozen=True)
class AuditEntry:
    at: dt.datetime
    user: str  # "" for a worker or the system
    kind: str
    object_id: int
    object: str
    action: str  # created, changed, deleted
    field: str  # "" for a creation or a deletion
    old: str
    new: str
    reason: str


def _history_rows(kind: str, challenge_id: int, phase_ids: list[int]) -> QuerySet:
    model = KINDS[kind]
    rows = model.history.all()  # type: ignore[attr-defined]
    if kind == "challenge":
        rows = rows.filter(id=challenge_id)
    elif kind in ("phase", "ground truth", "host"):
        rows = rows.filter(challenge_id=challenge_id)
    else:  # a submission's or a disqualification's challenge is its phase's (deleted phases' too)
        rows = rows.filter(phase_id__in=phase_ids)
    return rows.select_related("history_user").order_by("id", "history_date", "history_id")


def _text(value: object, limit: int | None) -> str:
    text = "" if value is None else str(value)
    return text if limit is None or len(text) <= limit else text[:limit] + "…"


def _label(kind: str, record: Model) -> str:
    """The object in a few words, from its own historical row (no query: a related name would cost one)."""
    labels = {"challenge": lambda r: r.slug, "phase": lambda r: r.name, "ground truth": lambda r: r.name,
              "host": lambda r: f"{r.role}: user #{r.user_id}", "submission": lambda r: f"#{r.id} {r.method_name}",
              "disqualification": lambda r: f"team #{r.team_id} from phase #{r.phase_id}"}
    return _text(labels[kind](record), 120)


def _entries_of(kind: str, records: Iterable, limit: int | None) -> Iterator[AuditEntry]:
    previous = None
    for record in records:
        user = record.history_user.get_username() if record.history_user else ""
        base = dict(at=record.history_date, user=user, kind=kind, object_id=record.id,
                    object=_label(kind, record), action=ACTIONS.get(record.history_type, record.history_type),
                    reason=record.history_change_reason or "")
        same_object = previous is not None and previous.id == record.id
        if record.history_type == "~" and same_object:
            changes = record.diff_against(previous).changes
            for change in changes:
                yield AuditEntry(field=change.field, old=_text(change.old, limit), new=_text(change.new, limit), **base)
            if not changes and base["reason"]:  # recorded with a reason and nothing changed: still worth a line
                yield AuditEntry(field="", old="", new="", **base)
        else:
            yield AuditEntry(field="", old="", new="", **base)
        previous = record


def audit_entries(*, challenge: Challenge, kind: str = "", user: str = "", object_id: int | None = None,
                  limit: int | None = VALUE_MAX) -> list[AuditEntry]:
    """The challenge's audit log, newest first; `kind`, `user` (a username, "-" for workers and the system)
    and `object_id` narrow it; values longer than `limit` characters are cut (None: whole)."""
    phase_ids = list(Phase.history.filter(challenge_id=challenge.pk).values_list("id", flat=True).distinct())
    entries: list[AuditEntry] = []
    for name in KINDS:
        if kind and kind != name:
            continue
        rows = _history_rows(name, challenge.pk, phase_ids)
        if object_id is not None:
            rows = rows.filter(id=object_id)
        entries.extend(_entries_of(name, rows.iterator(chunk_size=2000), limit))
    if user:  # after the diffs: a version is diffed against the one before it, whoever made that one
        entries = [e for e in entries if e.user == ("" if user == "-" else user)]
    entries.sort(key=lambda e: e.at, reverse=True)
    return entries


CSV_HEADER = ["at", "user", "kind", "object_id", "object", "action", "field", "old", "new", "reason"]


def audit_csv_lines(entries: Iterable[AuditEntry]) -> Iterator[str]:
    """The entries as CSV, a line at a time (for a streamed download)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(values: list[object]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(values)
        return buffer.getvalue()

    yield line(CSV_HEADER)
    for e in entries:
        yield line([e.at.isoformat(), e.user, e.kind, e.object_id, e.object, e.action, e.field, e.old, e.new,
                    e.reason])

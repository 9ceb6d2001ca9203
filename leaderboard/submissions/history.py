"""A submission's history (the audit log's rows for it, django-simple-history): recorded by every save() on its
own, and by `record_changed` after the writes that are conditional UPDATEs (grading.py's claims, the
organizers' flags), which simple-history does not see. Its status history is read from the same rows.

Why this way: the claim logic stays one conditional UPDATE (whoever wins writes; the others change nothing,
and record nothing); the winner then writes one historical row with the row as it is now. A second table of
events would say the same thing twice and still miss the saves.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser

from .models import Submission


def record_changed(*, submission_id: int, by: AbstractBaseUser | None = None, reason: str = "") -> None:
    """Record a submission's row as it is now in its history: call after a conditional UPDATE that changed
    it (a status transition, a flag); `by` the acting user (None: a worker or the system), `reason` in words."""
    rows = list(Submission.objects.filter(pk=submission_id))
    if rows:
        Submission.history.bulk_history_create(rows, update=True, default_user=by, default_change_reason=reason)


@dataclass(frozen=True)
class StatusChange:
    """One step of a submission's status history."""

    at: dt.datetime
    status: str
    attempt: int
    by: str  # a user's name, or "" (the worker or the system)
    reason: str


def status_history(*, submission: Submission) -> list[StatusChange]:
    """The statuses a submission went through, oldest first, one row per change of (status, attempt)."""
    changes: list[StatusChange] = []
    seen: tuple[str, int] | None = None
    records: Iterable = (submission.history.order_by("history_date", "history_id")
                         .select_related("history_user"))
    for record in records:
        key = (record.status, record.attempt)
        if key == seen:
            continue
        seen = key
        user = record.history_user
        changes.append(StatusChange(at=record.history_date, status=record.status, attempt=record.attempt,
                                    by=user.get_username() if user else "", reason=record.history_change_reason or ""))
    return changes

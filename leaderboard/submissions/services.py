"""Writes for submissions on the web side: create (form and one-POST API upload), cancel, the team's
public flag and method fields, rescore. The organizers' flags and disqualifications are in moderation.py,
worker-side writes in grading.py, large uploads in uploads.py, the checks both ways in share in admission.py.
Every write records the row in its history (the audit log, history.py), with who and why."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import PurePath
from typing import IO

from django.contrib.auth.models import AbstractBaseUser
from django.core.files.base import File
from django.db import transaction
from django.utils import timezone

from leaderboard.challenges.models import Phase
from leaderboard.challenges.permissions import Can, organizer_can
from leaderboard.errors import ApplicationError, Conflict, NotAllowed
from leaderboard.lib.files import file_sha256

from . import admission, queue
from .boards import board_changed, boards_deferred
from .history import record_changed
from .models import Submission
from .selectors import submission_access
from .signals import announce_end

Status = Submission.Status
log = logging.getLogger(__name__)


def submission_create(
    *,
    phase: Phase,
    user: AbstractBaseUser,
    file: IO[bytes],
    method_name: str,
    method_description: str = "",
    method_url: str = "",
    code_url: str = "",
    is_public: bool = True,
    is_baseline: bool = False,
    idempotency_key: str = "",
    now: dt.datetime | None = None,
) -> Submission:
    """Accept an upload for scoring, or raise ApplicationError saying why not.

    Participants submit for their team, within the phase's dates and quotas. Organizers (staff)
    may add baseline entries, which belong to no team and use no quota. A retried upload (the same
    `idempotency_key`, or the same file moments ago) returns the earlier submission, `replayed`.
    """
    now = now or timezone.now()
    method_name = admission.check_method_fields(method_name=method_name, method_url=method_url, code_url=code_url)
    team = admission.submission_admit(phase=phase, user=user, is_baseline=is_baseline, now=now)
    sha256, size = file_sha256(file)
    admission.check_size(size=size)
    admission.check_zip(handle=file, filename=PurePath(getattr(file, "name", "") or "").name)
    fields = dict(method_name=method_name, method_description=method_description, method_url=method_url,
                  code_url=code_url, is_public=is_public, is_baseline=is_baseline)
    stored: list[Submission] = []

    def store(submission: Submission) -> None:
        submission.file.save("submission.zip", File(file, name="submission.zip"), save=False)
        stored.append(submission)

    try:
        return admission.submission_insert(
            phase=phase, team=team, user=user, sha256=sha256, size=size, now=now,
            idempotency_key=admission.check_idempotency_key(idempotency_key), store=store, **fields)
    except BaseException:
        # The row was not saved (the database went away, the request was cut): no file without its row.
        for submission in stored:
            _delete_quietly(submission)
        raise


def _delete_quietly(submission: Submission) -> None:
    try:
        submission.file.delete(save=False)
    except Exception:  # storage may be what failed; the orphan is only bytes, logged for the operator
        log.warning("could not delete %s after its submission was not saved", submission.file.name, exc_info=True)


def submission_update_method(*, submission: Submission, user: AbstractBaseUser, method_name: str | None = None,
                             method_description: str | None = None, method_url: str | None = None,
                             code_url: str | None = None) -> Submission:
    """The team changes its method's name, description or links (None: leave as is), checked as on submit.

    Submissions made without details (the evalai CLI answered "N") get a default name; this is how
    the team gives the real one.
    """
    if not submission_access(submission=submission, user=user).edit:
        raise NotAllowed("Only the submitting team can change the method's details.")
    fields = {"method_name": submission.method_name if method_name is None else method_name,
              "method_description": submission.method_description if method_description is None
              else method_description,
              "method_url": submission.method_url if method_url is None else method_url.strip(),
              "code_url": submission.code_url if code_url is None else code_url.strip()}
    fields["method_name"] = admission.check_method_fields(method_name=fields["method_name"],
                                                          method_url=fields["method_url"], code_url=fields["code_url"])
    return set_flag(submission, by=user, reason="method details changed by the team", **fields)


def submission_cancel(*, submission: Submission, user: AbstractBaseUser) -> Submission:
    """A team member (or an organizer) cancels a submission that has not finished; it no longer uses quota."""
    # access.cancel also says "not finished yet"; the conditional update below is what decides that,
    # since the row may have moved on since `submission` was read.
    access = submission_access(submission=submission, user=user)
    if not access.diagnostics or (submission.status in Submission.ACTIVE and not access.cancel):
        raise NotAllowed("Only the submitting team or the challenge's organizers can cancel this submission.")
    with transaction.atomic():  # the boards rebuilt with the change (a rescore's old scores leave them)
        updated = Submission.objects.filter(pk=submission.pk, status__in=Submission.ACTIVE).update(
            status=Status.CANCELLED, finished_at=timezone.now()
        )
        if not updated:
            raise Conflict(f"This submission is already {Submission.objects.get(pk=submission.pk).status}.")
        record_changed(submission_id=submission.pk, by=user, reason="cancelled")
        announce_end(submission.pk)
    submission.refresh_from_db()
    return submission


def set_flag(submission: Submission, *, by: AbstractBaseUser | None, reason: str, **fields: object) -> Submission:
    """Change fields the boards show (or whether they show the submission at all), recorded in its history
    with who and why."""
    with transaction.atomic():
        Submission.objects.filter(pk=submission.pk).update(**fields)
        record_changed(submission_id=submission.pk, by=by, reason=reason)
        board_changed(phase_id=submission.phase_id)
    submission.refresh_from_db()
    return submission



def given_reason(reason: str) -> str:
    """The organizer's reason for a moderation, stripped; ApplicationError without one (it is recorded, and the
    team may see it)."""
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("Give a reason: it is recorded in the audit log (and the team sees it for a hide, "
                               "a flag or a disqualification).", detail={"field": "reason"})
    return reason


def check_moderates(*, by: AbstractBaseUser | None, challenge_id: int) -> None:
    """NotAllowed unless `by` may moderate the challenge (the one rule, permissions.organizer_can)."""
    if not organizer_can(by, challenge_id, Can.MODERATE):
        raise NotAllowed("Only the challenge's organizers can do this.")


def submission_set_public(*, submission: Submission, user: AbstractBaseUser, is_public: bool) -> Submission:
    """A team chooses whether a submission may appear on the public board."""
    access = submission_access(submission=submission, user=user)
    if not access.set_public:
        if access.edit and submission.status in (Status.FAILED, Status.CANCELLED):
            raise Conflict(f"A {submission.status} submission is on no leaderboard; there is nothing to show "
                           "or hide.")
        raise NotAllowed("Only the submitting team can change this.")
    return set_flag(submission, by=user, reason="shown on the public board by the team" if is_public
                     else "kept off the public board by the team", is_public=is_public)


def submission_rescore(*, submission: Submission, by: AbstractBaseUser | None, reason: str) -> Submission:
    """An organizer scores a finished or failed submission again as a new attempt (cancelled ones stay
    cancelled); `reason` is recorded."""
    reason = given_reason(reason)
    check_moderates(by=by, challenge_id=Phase.objects.values_list("challenge_id", flat=True).get(
        pk=submission.phase_id))
    return _rescore(submission, by=by, reason=reason)


def _rescore(submission: Submission, *, by: AbstractBaseUser | None, reason: str) -> Submission:
    with transaction.atomic():
        locked = Submission.objects.select_for_update().get(pk=submission.pk)
        if locked.status == Status.CANCELLED:
            raise Conflict("A cancelled submission is not rescored.")
        locked.attempt += 1  # row locked; not F(): the history row copies it
        locked.status, locked.started_at, locked.finished_at = Status.SUBMITTED, None, None
        locked.failure_message, locked.problems, locked.failure_kind, locked.crash_report = "", [], "", ""
        locked.lease_owner, locked.lease_expires_at, locked.lost_workers, locked.retry_reason = "", None, 0, ""
        locked.queued_at = timezone.now()
        locked._history_user, locked._change_reason = by, f"rescored: {reason}"  # the audit log (simple-history)
        locked.save(update_fields=["attempt", "status", "started_at", "finished_at", "failure_message", "problems",
                                   "failure_kind", "crash_report", "lease_owner", "lease_expires_at", "lost_workers",
                                   "retry_reason", "queued_at"])
        locked.refresh_from_db()
        queue.score_on_commit(submission_id=locked.pk, attempt=locked.attempt)
        # A failed submission that has scores from an earlier attempt is back on the board while rescored.
        board_changed(phase_id=locked.phase_id)
    return locked


def phase_rescore(*, phase: Phase, by: AbstractBaseUser | None, reason: str) -> int:
    """An organizer rescores every finished or failed submission of a phase (e.g. after a new ground truth).
    The boards are rebuilt once, at the end; each new attempt's scores replace the old ones as it finishes."""
    reason = given_reason(reason)
    check_moderates(by=by, challenge_id=phase.challenge_id)
    count = 0
    with boards_deferred():
        for submission in phase.submissions.filter(status__in=[Status.FINISHED, Status.FAILED]).order_by("id"):
            _rescore(submission, by=by, reason=reason)
            count += 1
    return count

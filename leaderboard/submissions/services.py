"""Writes for submissions: create, score (in a worker), cancel, hide, rescore, reconcile.

Scoring is claimed with a conditional UPDATE on (id, attempt, status): a redelivered or duplicate
task finds nothing to claim and does nothing. Results are written in one transaction, with a
unique row per (submission, split), and only if the attempt is still the current one.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile, File
from django.core.validators import URLValidator
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from leaderboard.accounts.models import Team
from leaderboard.accounts.selectors import team_for
from leaderboard.challenges.models import Phase
from leaderboard.challenges.selectors import quota_for
from leaderboard.challenges.services import file_sha256, ground_truth_load
from leaderboard.errors import ApplicationError, Conflict, NotAllowed, QuotaExceeded, TooLarge
from scoring import Evaluation, InvalidSubmission, evaluate, validate_submission

from .models import Score, Submission

log = logging.getLogger(__name__)
Status = Submission.Status
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


def _enqueue(submission: Submission) -> None:
    """Send the scoring task once the current transaction commits (never for uncommitted rows)."""
    from .tasks import score_submission

    pk, attempt = submission.pk, submission.attempt
    transaction.on_commit(lambda: score_submission.delay(pk, attempt))


def submission_admit(*, phase: Phase, user: AbstractBaseUser, is_baseline: bool = False,
                     now: dt.datetime | None = None) -> Team | None:
    """Who the submission is for (the user's team; None for a baseline), or raise why not now."""
    if is_baseline:
        if not user.is_staff:
            raise NotAllowed("Only organizers can add baseline entries.")
        return None
    team = team_for(user=user, challenge=phase.challenge)
    if team is None:
        raise NotAllowed("Create or join a team for this challenge before submitting.")
    if not phase.is_open(now or timezone.now()):
        raise NotAllowed(_closed_reason(phase, now or timezone.now()))
    return team


def submission_check_quota(*, phase: Phase, team: Team | None, now: dt.datetime) -> None:
    """Raise QuotaExceeded if the team has no submission left (baselines have no quota)."""
    if team is None:
        return
    quota = quota_for(phase=phase, team_id=team.pk, now=now)
    if quota.exhausted:
        which = "total" if quota.total_left == 0 else "daily"  # a new day does not lift the total
        when = f" It resets at {quota.resets_at:%Y-%m-%d %H:%M} UTC." if which == "daily" else ""
        raise QuotaExceeded(
            f"Your team has used its {which} quota of submissions for this phase.{when}",
            detail={"quota": which, "resets_at": quota.resets_at.isoformat() if which == "daily" else None},
        )


def check_method_fields(*, method_name: str, method_url: str = "", code_url: str = "") -> str:
    """The cleaned method name, or ApplicationError for a missing name or a non-web URL."""
    method_name = method_name.strip()
    if not method_name:
        raise ApplicationError("Give your method a name; it is shown on the leaderboard.")
    if len(method_name) > 200:
        raise ApplicationError("The method name is longer than 200 characters.")
    for label, url in (("method URL", method_url), ("code URL", code_url)):
        if url and not _is_web_url(url):
            raise ApplicationError(f"The {label} must be an http:// or https:// address.", detail={"url": url})
    return method_name


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
    now: dt.datetime | None = None,
) -> Submission:
    """Accept an upload for scoring, or raise ApplicationError saying why not.

    Participants submit for their team, within the phase's dates and quotas. Organizers (staff)
    may add baseline entries, which belong to no team and use no quota.
    """
    now = now or timezone.now()
    method_name = check_method_fields(method_name=method_name, method_url=method_url, code_url=code_url)
    team = submission_admit(phase=phase, user=user, is_baseline=is_baseline, now=now)
    sha256, size = file_sha256(file)
    check_upload_size(size)
    if file.read(4) not in ZIP_MAGIC:
        raise ApplicationError(NOT_A_ZIP)
    file.seek(0)
    fields = dict(method_name=method_name, method_description=method_description, method_url=method_url,
                  code_url=code_url, is_public=is_public, is_baseline=is_baseline)
    return submission_insert(phase=phase, team=team, user=user, sha256=sha256, size=size, now=now,
                             store=lambda s: s.file.save("submission.zip", File(file, name="submission.zip"),
                                                         save=False), **fields)


NOT_A_ZIP = "This is not a zip file. Zip the split folders (short, medium, long) and upload the .zip."


def check_upload_size(size: int) -> None:
    if size > settings.SUBMISSION_MAX_BYTES:
        raise TooLarge(f"The file is {size} bytes; the limit is {settings.SUBMISSION_MAX_BYTES} bytes.",
                       detail={"size": size, "limit": settings.SUBMISSION_MAX_BYTES})


def submission_insert(*, phase: Phase, team: Team | None, user: AbstractBaseUser, sha256: str, size: int,
                      now: dt.datetime, store: Callable[[Submission], None], **fields: object) -> Submission:
    """Create the row and queue its scoring, the quota checked under a lock on the team.

    `store` puts the file in place on the unsaved submission (saves a new file, or points the
    field at an object already in private storage).
    """
    with transaction.atomic():
        if team is not None:
            Team.objects.select_for_update().get(pk=team.pk)  # serialises quota checks per team
        submission_check_quota(phase=phase, team=team, now=now)
        submission = Submission(phase=phase, team=team, user=user, file_sha256=sha256, file_size=size,
                                submitted_at=now, **fields)
        store(submission)
        submission.save()
        _enqueue(submission)
    return submission


def _is_web_url(url: str) -> bool:
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        return False
    return len(url) <= 200


def _closed_reason(phase: Phase, now: dt.datetime) -> str:
    if not phase.accepts_submissions:
        return f"The phase {phase.name!r} does not accept submissions."
    if phase.starts_at and now < phase.starts_at:
        return f"The phase {phase.name!r} opens at {phase.starts_at:%Y-%m-%d %H:%M} UTC."
    return f"The phase {phase.name!r} closed at {phase.ends_at:%Y-%m-%d %H:%M} UTC."


def _claim(submission_id: int, attempt: int, from_status: str, to_status: str, **fields: object) -> bool:
    """Move a submission between statuses if (and only if) nobody else did. True when it was ours."""
    updated = Submission.objects.filter(pk=submission_id, attempt=attempt, status=from_status).update(
        status=to_status, **fields
    )
    return updated == 1


def submission_score(*, submission_id: int, attempt: int) -> Submission | None:
    """Validate and score one submission attempt. Returns None when the attempt was not ours to run.

    A problem with the submission ends it as failed, with the reason in plain words. Anything else
    (storage down, a bug) propagates, so the task can retry it.
    """
    if not _claim(submission_id, attempt, Status.SUBMITTED, Status.VALIDATING, started_at=timezone.now()):
        return None
    submission = Submission.objects.select_related("phase__ground_truth").get(pk=submission_id)
    bundle = submission.phase.ground_truth
    if bundle is None or bundle.status == bundle.Status.INVALID:
        what = "has no ground truth yet" if bundle is None else "has a ground truth that failed its check"
        _fail(submission, attempt, f"This phase {what}, so nothing can be scored. The organizers can rescore the "
              "submission once it is fixed; it does not count against your quota.")
        return Submission.objects.get(pk=submission_id)

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="egomask-") as tmp:
        local = Path(tmp) / "submission.zip"
        with submission.file.open("rb") as source, local.open("wb") as target:
            shutil.copyfileobj(source, target, 1024 * 1024)
        with local.open("rb") as handle:
            actual, _ = file_sha256(handle)
        if actual != submission.file_sha256:
            raise RuntimeError(f"stored file of submission {submission_id} has sha256 {actual}, "
                               f"expected {submission.file_sha256}")
        report = validate_submission(local)
        if not report.ok:
            _fail(submission, attempt, _problem_message(report.errors[0], len(report.errors)),
                  [e.as_dict() for e in report.errors])
            return Submission.objects.get(pk=submission_id)
        if not _claim(submission_id, attempt, Status.VALIDATING, Status.SCORING):
            return None
        try:
            gt = ground_truth_load(bundle=bundle)
        except ApplicationError as exc:
            log.error("submission %s: %s", submission_id, exc.message)
            _fail(submission, attempt, "The ground truth of this phase cannot be loaded, so nothing can be scored. "
                  "The organizers can rescore the submission once it is fixed; it does not count against your quota.")
            return Submission.objects.get(pk=submission_id)
        try:
            evaluation = evaluate(gt, local)
        except InvalidSubmission as exc:
            _fail(submission, attempt, _problem_message(exc, len(exc.problems)), [e.as_dict() for e in exc.problems])
            return Submission.objects.get(pk=submission_id)
    _finish(submission_id, attempt, evaluation, time.monotonic() - started)
    return Submission.objects.get(pk=submission_id)


def _problem_message(first: InvalidSubmission, count: int) -> str:
    more = f" ({count - 1} more problem{'s' if count > 2 else ''} listed below.)" if count > 1 else ""
    return f"Your submission could not be scored: {first}.{more}"


def _fail(submission: Submission, attempt: int, message: str, problems: list | None = None) -> None:
    Submission.objects.filter(pk=submission.pk, attempt=attempt, status__in=Submission.ACTIVE).update(
        status=Status.FAILED, failure_message=message, problems=problems or [], finished_at=timezone.now()
    )


def _details_csv(evaluation: Evaluation) -> bytes:
    rows = [row.as_row() for row in evaluation.expressions]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["split"])
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def _finish(submission_id: int, attempt: int, evaluation: Evaluation, seconds: float) -> None:
    with transaction.atomic():
        submission = Submission.objects.select_for_update().get(pk=submission_id)
        if submission.attempt != attempt or submission.status != Status.SCORING:
            return  # a newer attempt (rescore, reconcile) owns this submission now
        for split, summary in evaluation.summaries.items():
            Score.objects.update_or_create(
                submission=submission, split=split,
                defaults={**summary.as_dict(), "n_expressions": summary.n_expressions,
                          "scorer_version": evaluation.scorer_version, "gt_version": evaluation.gt_version},
            )
        Score.objects.filter(submission=submission).exclude(split__in=list(evaluation.summaries)).delete()
        submission.details.save("per-expression.csv", ContentFile(_details_csv(evaluation)), save=False)
        submission.status = Status.FINISHED
        submission.warnings = [w.as_dict() for w in evaluation.warnings]
        submission.failure_message, submission.problems = "", []
        submission.scorer_version, submission.gt_version = evaluation.scorer_version, evaluation.gt_version
        submission.finished_at, submission.scoring_seconds = timezone.now(), seconds
        submission.save()


def submission_fail_internal(*, submission_id: int, attempt: int, reason: str) -> None:
    """End an attempt that could not run for reasons that are not the team's fault."""
    Submission.objects.filter(pk=submission_id, attempt=attempt, status__in=Submission.ACTIVE).update(
        status=Status.FAILED, finished_at=timezone.now(),
        failure_message=f"{reason} This is not a problem with your file and does not count against your quota; "
        "the organizers can rescore it.",
    )


def submission_release(*, submission_id: int, attempt: int) -> bool:
    """Put an attempt back in the queue's hands so the task can retry it.

    True when the attempt is now waiting: it was claimed and is released, or the error came
    before the claim and it is still `submitted`. False when another attempt or a final state owns it.
    """
    released = Submission.objects.filter(pk=submission_id, attempt=attempt,
                                         status__in=[Status.VALIDATING, Status.SCORING]).update(
        status=Status.SUBMITTED, started_at=None)
    return bool(released) or Submission.objects.filter(pk=submission_id, attempt=attempt,
                                                       status=Status.SUBMITTED).exists()


def submission_retry(*, submission_id: int, attempt: int) -> Submission | None:
    """Start a new attempt of an active submission (after an internal error or a lost worker)."""
    with transaction.atomic():
        submission = Submission.objects.select_for_update().filter(pk=submission_id, attempt=attempt,
                                                                   status__in=Submission.ACTIVE).first()
        if submission is None:
            return None
        submission.attempt = F("attempt") + 1
        submission.status, submission.started_at = Status.SUBMITTED, None
        submission.save(update_fields=["attempt", "status", "started_at"])
        submission.refresh_from_db()
        _enqueue(submission)
    return submission


def submission_cancel(*, submission: Submission, user: AbstractBaseUser) -> Submission:
    """A team member cancels a submission that has not finished; it no longer uses quota."""
    if not (user.is_staff or (submission.team and submission.team.memberships.filter(user=user).exists())):
        raise NotAllowed("Only the submitting team can cancel this submission.")
    updated = Submission.objects.filter(pk=submission.pk, status__in=Submission.ACTIVE).update(
        status=Status.CANCELLED, finished_at=timezone.now()
    )
    if not updated:
        raise Conflict(f"This submission is already {Submission.objects.get(pk=submission.pk).status}.")
    submission.refresh_from_db()
    return submission


def _set_flag(submission: Submission, **fields: object) -> Submission:
    Submission.objects.filter(pk=submission.pk).update(**fields)
    submission.refresh_from_db()
    return submission


def submission_set_hidden(*, submission: Submission, hidden: bool) -> Submission:
    """Organizers hide a submission from every board (kept, still visible to its team)."""
    return _set_flag(submission, hidden=hidden)


def submission_set_baseline(*, submission: Submission, is_baseline: bool) -> Submission:
    return _set_flag(submission, is_baseline=is_baseline)


def submission_set_public(*, submission: Submission, user: AbstractBaseUser, is_public: bool) -> Submission:
    """A team chooses whether a submission may appear on the public board."""
    if not (submission.team and submission.team.memberships.filter(user=user).exists()):
        raise NotAllowed("Only the submitting team can change this.")
    return _set_flag(submission, is_public=is_public)


def submission_rescore(*, submission: Submission) -> Submission:
    """Score a finished or failed submission again as a new attempt (cancelled ones stay cancelled)."""
    with transaction.atomic():
        locked = Submission.objects.select_for_update().get(pk=submission.pk)
        if locked.status == Status.CANCELLED:
            raise Conflict("A cancelled submission is not rescored.")
        locked.attempt = F("attempt") + 1
        locked.status, locked.started_at, locked.finished_at = Status.SUBMITTED, None, None
        locked.failure_message, locked.problems = "", []
        locked.save(update_fields=["attempt", "status", "started_at", "finished_at", "failure_message", "problems"])
        locked.refresh_from_db()
        _enqueue(locked)
    return locked


def phase_rescore(*, phase: Phase) -> int:
    """Rescore every finished or failed submission of a phase (e.g. after a new ground truth)."""
    count = 0
    for submission in phase.submissions.filter(status__in=[Status.FINISHED, Status.FAILED]).order_by("id"):
        submission_rescore(submission=submission)
        count += 1
    return count


def submissions_reconcile(*, now: dt.datetime | None = None,
                          enqueue: Callable[[Submission], None] | None = None) -> dict[str, int]:
    """Re-enqueue what is stuck: queued but never picked up, or claimed by a worker that vanished."""
    now = now or timezone.now()
    requeued = 0
    for submission in Submission.objects.filter(status=Status.SUBMITTED,
                                                submitted_at__lt=now - dt.timedelta(minutes=2)):
        # Same attempt: if the first message is still coming, only one of the two will claim it.
        with transaction.atomic():
            (enqueue or _enqueue)(submission)
        requeued += 1
    stuck_before = now - dt.timedelta(seconds=settings.SCORING_STUCK_AFTER)
    restarted = 0
    for submission in Submission.objects.filter(status__in=[Status.VALIDATING, Status.SCORING],
                                                started_at__lt=stuck_before):
        if submission_retry(submission_id=submission.pk, attempt=submission.attempt):
            restarted += 1
    return {"requeued": requeued, "restarted": restarted}

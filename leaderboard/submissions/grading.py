"""Worker-side writes: claim an attempt, score it, finish or fail it, release it for a retry, start a new
attempt, and reconcile what is stuck.

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

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from leaderboard.challenges.services import ground_truth_load
from leaderboard.errors import ApplicationError
from leaderboard.lib.files import file_sha256
from scoring import Evaluation, InvalidSubmission, evaluate, validate_submission

from . import queue
from .models import Score, Submission

log = logging.getLogger(__name__)
Status = Submission.Status


def _claim(submission_id: int, attempt: int, from_status: str, to_status: str, **fields: object) -> bool:
    """Move a submission between statuses if (and only if) nobody else did. True when it was ours."""
    updated = Submission.objects.filter(pk=submission_id, attempt=attempt, status=from_status).update(
        status=to_status, **fields
    )
    return updated == 1


def _enqueue(submission: Submission) -> None:
    queue.score_on_commit(submission_id=submission.pk, attempt=submission.attempt)


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

"""Worker-side writes: claim an attempt, score it, finish or fail it, release it for a retry, start a new
attempt, and reconcile what is stuck.

Scoring is claimed with a conditional UPDATE on (id, attempt, status): a redelivered or duplicate
task finds nothing to claim and does nothing. Results are written in one transaction, with a
unique row per (submission, split), and only if the attempt is still the current one.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import logging
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
from leaderboard.lib.files import CHUNK
from scoring import Evaluation, GroundTruth, InvalidSubmission, evaluate

from . import queue
from .models import Score, Submission
from .signals import announce_end

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


GROUND_TRUTH_UNAVAILABLE = ("This phase has no usable ground truth yet, so nothing can be scored. The organizers "
                            "can rescore the submission once it is fixed; it does not count against your quota.")


def submission_score(*, submission_id: int, attempt: int) -> Submission | None:
    """Score one submission attempt in one pass. Returns None when the attempt was not ours to run.

    `validating`: the ground truth is loaded and the stored file fetched (checked against its hash in
    the same read). `scoring`: one `scoring.evaluate`, which either scores the file or lists
    every problem in it; those end the submission as failed, in plain words. A phase without a usable
    ground truth fails it too, not counted against quota. Anything else (storage down, a bug)
    propagates, so the task can retry it.
    """
    if not _claim(submission_id, attempt, Status.SUBMITTED, Status.VALIDATING, started_at=timezone.now()):
        return None
    submission = Submission.objects.select_related("phase__ground_truth").get(pk=submission_id)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="egomask-") as tmp:
        gt = _ground_truth(submission)
        if gt is None:
            _fail(submission, attempt, GROUND_TRUTH_UNAVAILABLE)
            return Submission.objects.get(pk=submission_id)
        local = Path(tmp) / "submission.zip"
        _fetch(submission, local)
        if not _claim(submission_id, attempt, Status.VALIDATING, Status.SCORING):
            return None
        try:
            evaluation = evaluate(gt, local)
        except InvalidSubmission as exc:
            _fail(submission, attempt, f"Your submission could not be scored: {exc.summary()}.",
                  [problem.as_dict() for problem in exc.problems])
            return Submission.objects.get(pk=submission_id)
    _finish(submission_id, attempt, evaluation, time.monotonic() - started)
    return Submission.objects.get(pk=submission_id)


def _fetch(submission: Submission, local: Path) -> None:
    """Copy the stored file to `local`, checking its sha256 on the way (a mismatch is our fault: raise)."""
    digest = hashlib.sha256()
    with submission.file.open("rb") as source, local.open("wb") as target:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            target.write(chunk)
    if digest.hexdigest() != submission.file_sha256:
        raise RuntimeError(f"stored file of submission {submission.pk} has sha256 {digest.hexdigest()}, "
                           f"expected {submission.file_sha256}")


def _ground_truth(submission: Submission) -> GroundTruth | None:
    """The phase's parsed ground truth, or None (logged for the organizers) when there is none to use."""
    bundle = submission.phase.ground_truth
    if bundle is None:
        log.error("submission %s: phase %s has no ground truth", submission.pk, submission.phase_id)
        return None
    if bundle.status == bundle.Status.INVALID:
        log.error("submission %s: ground truth %r failed its check: %s", submission.pk, bundle.name, bundle.message)
        return None
    try:
        return ground_truth_load(bundle=bundle)
    except ApplicationError as exc:  # invalid (a bundle attached before its check finished)
        log.error("submission %s: %s", submission.pk, exc.message)
        return None


def _fail(submission: Submission, attempt: int, message: str, problems: list | None = None) -> None:
    if Submission.objects.filter(pk=submission.pk, attempt=attempt, status__in=Submission.ACTIVE).update(
        status=Status.FAILED, failure_message=message, problems=problems or [], finished_at=timezone.now()
    ):
        announce_end(submission.pk)


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
        announce_end(submission.pk)


def submission_fail_internal(*, submission_id: int, attempt: int, reason: str) -> None:
    """End an attempt that could not run for reasons that are not the team's fault."""
    if Submission.objects.filter(pk=submission_id, attempt=attempt, status__in=Submission.ACTIVE).update(
        status=Status.FAILED, finished_at=timezone.now(),
        failure_message=f"{reason} This is not a problem with your file and does not count against your quota; "
        "the organizers can rescore it.",
    ):
        announce_end(submission_id)


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

"""Worker-side writes: claim an attempt, score it, finish or fail it, start a new attempt, take over the
attempt of a worker that stopped, and reconcile what is stuck.

Scoring is claimed with a conditional UPDATE on (id, attempt, status), and the claim is a lease: the
worker renews `lease_expires_at` every SCORING_LEASE_SECONDS / 4 while it works (a thread of its own),
so a lease that ran out means its worker is gone (SIGKILL, OOM, a lost machine). A redelivered task
that finds such an attempt takes it over as the next attempt, by a conditional UPDATE that only one
can win; the reconciler does the same for messages that are not redelivered (a worker's main process
lost with the message unacknowledged). Statuses only move forward within an attempt. Results are
written in one transaction, with a unique row per (submission, split), and only by the attempt's
lease holder while the attempt is still the current one.

Whose fault: problems in the file end as `failed` (kind `invalid`) in plain words; a file that
stops the scorer in a way it does not foresee ends as `failed` (kind `crashed`) at once, its
traceback kept for the organizers, and counts against the team's quota; anything outside the
scorer (storage, the database, a missing ground truth) is ours, and the task retries it.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import logging
import os
import socket
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from celery.exceptions import SoftTimeLimitExceeded
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from leaderboard.challenges.services import ground_truth_load
from leaderboard.errors import ApplicationError
from leaderboard.lib.files import CHUNK
from scoring import Evaluation, GroundTruth, InvalidSubmission, evaluate

from . import queue
from .analysis import Computed, analysis_compute, analysis_store
from .history import record_changed
from .models import FailureKind, RetryReason, Score, ScoreHistory, Submission
from .receipts import receipt_issue
from .signals import announce_end

log = logging.getLogger(__name__)
Status = Submission.Status
CLAIMED = (Status.VALIDATING, Status.SCORING)
MAX_LOST_WORKERS = 3  # a file that took down this many workers in a row is not tried again
CRASH_REPORT_MAX = 20_000  # characters of traceback kept for the organizers


def _claim(submission_id: int, attempt: int, from_status: str, to_status: str, *, owner: str | None = None,
           **fields: object) -> bool:
    """Move a submission between statuses if (and only if) nobody else did (and, with `owner`, while that
    worker still holds its lease). True when it was ours."""
    held = {} if owner is None else {"lease_owner": owner}
    updated = Submission.objects.filter(pk=submission_id, attempt=attempt, status=from_status, **held).update(
        status=to_status, **fields
    )
    if updated == 1:  # the audit log sees UPDATEs only through this (history.py); the losers record nothing
        record_changed(submission_id=submission_id, reason=_by_worker(fields.get("lease_owner", owner)))
    return updated == 1


def _by_worker(owner: object) -> str:
    return f"worker {owner}" if owner else "worker"


def _enqueue(submission: Submission) -> None:
    queue.score_on_commit(submission_id=submission.pk, attempt=submission.attempt)


GROUND_TRUTH_UNAVAILABLE = ("This phase has no usable ground truth yet, so nothing can be scored. The organizers "
                            "can rescore the submission once it is fixed; it does not count against your quota.")


def submission_score(*, submission_id: int, attempt: int) -> Submission | None:
    """Score one submission attempt in one pass. Returns None when the attempt was not ours to run.

    The attempt is claimed (or, if a worker that stopped left it claimed, taken over as the next
    attempt) under a lease that is renewed until this returns. `validating`: the ground truth is
    loaded and the stored file fetched (checked against its hash in the same read). `scoring`: one
    `scoring.evaluate`, which either scores the file or lists every problem in it; those end the
    submission as failed, in plain words, and so does a crash of the scorer on the file. A phase
    without a usable ground truth fails it too, not counted against quota. Anything else (storage
    down, the database) propagates, so the task can retry it.
    """
    owner = lease_owner()
    attempt = _claim_or_take_over(submission_id, attempt, owner)
    if attempt is None:
        return None
    with _lease_kept(submission_id, attempt, owner):
        submission = Submission.objects.select_related("phase__ground_truth").get(pk=submission_id)
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="egomask-") as tmp:
            gt = _ground_truth(submission)
            if gt is None:
                _fail(submission, attempt, GROUND_TRUTH_UNAVAILABLE, kind=FailureKind.INTERNAL)
                return Submission.objects.get(pk=submission_id)
            local = Path(tmp) / "submission.zip"
            _fetch(submission, local)
            if not _claim(submission_id, attempt, Status.VALIDATING, Status.SCORING, owner=owner):
                return None
            try:
                evaluation = evaluate(gt, local, timelines=True)
            except InvalidSubmission as exc:
                _fail(submission, attempt, f"Your submission could not be scored: {exc.summary()}.",
                      [problem.as_dict() for problem in exc.problems], kind=FailureKind.INVALID)
                return Submission.objects.get(pk=submission_id)
            except SoftTimeLimitExceeded:
                raise
            except Exception as exc:  # the scorer met something in this file it does not foresee
                _crashed(submission, attempt, exc)
                return Submission.objects.get(pk=submission_id)
        computed = analysis_compute(evaluation=evaluation, gt=gt, phase=submission.phase)
        _finish(submission_id, attempt, owner, evaluation, computed, time.monotonic() - started)
    return Submission.objects.get(pk=submission_id)


def lease_owner() -> str:
    """A new lease holder's name: "host:pid:random", so organizers (and the fault tests) see which process
    scores what."""
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _lease_until(now: dt.datetime | None = None) -> dt.datetime:
    return (now or timezone.now()) + dt.timedelta(seconds=settings.SCORING_LEASE_SECONDS)


def _claim_or_take_over(submission_id: int, attempt: int, owner: str) -> int | None:
    """The attempt this worker now holds: `attempt` itself when it was waiting, the next one when
    `attempt` was claimed by a worker whose lease ran out (waiting out a lease that is still live,
    once); None when the attempt is not ours to run (done, superseded, or its worker is alive)."""
    now = timezone.now()
    if _claim(submission_id, attempt, Status.SUBMITTED, Status.VALIDATING, started_at=now, lease_owner=owner,
              lease_expires_at=_lease_until(now), unsent=False):
        return attempt
    row = Submission.objects.filter(pk=submission_id, attempt=attempt, status__in=CLAIMED).values(
        "lease_expires_at").first()
    if row is None:
        return None
    expires = row["lease_expires_at"]
    if expires is not None and expires > now:
        # Delivered again while the attempt is claimed: its worker stopped a moment ago (the lease
        # has not run out yet), or it is alive (a duplicate message) and keeps renewing the lease.
        time.sleep((expires - now).total_seconds() + 0.5)
    return attempt + 1 if submission_take_over(submission_id=submission_id, attempt=attempt, owner=owner) else None


def submission_take_over(*, submission_id: int, attempt: int, owner: str,
                         now: dt.datetime | None = None) -> bool:
    """Start the next attempt of one left claimed by a worker whose lease ran out, held by `owner`.

    One conditional UPDATE: of two workers (or a worker and the reconciler) only one wins. A file
    that took down MAX_LOST_WORKERS workers in a row fails instead, so one upload cannot keep the
    queue's workers dying.
    """
    now = now or timezone.now()
    expired = Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True,
                                              started_at__lt=now - dt.timedelta(seconds=settings.SCORING_STUCK_AFTER))
    gone = Submission.objects.filter(expired, pk=submission_id, attempt=attempt, status__in=CLAIMED)
    if gone.filter(lost_workers__gte=MAX_LOST_WORKERS - 1).exists():
        _stopped_too_often(submission_id, attempt)
        return False
    taken = gone.update(attempt=F("attempt") + 1, status=Status.VALIDATING, started_at=now, lease_owner=owner,
                        lease_expires_at=_lease_until(now), retry_reason=RetryReason.WORKER_LOST,
                        lost_workers=F("lost_workers") + 1)
    if taken:
        record_changed(submission_id=submission_id, reason=f"{_by_worker(owner)} took over attempt {attempt}, "
                       "left by a worker that stopped")
        log.warning("submission %s: attempt %s was left by a worker that stopped; attempt %s takes over",
                    submission_id, attempt, attempt + 1)
    return bool(taken)


def _stopped_too_often(submission_id: int, attempt: int) -> None:
    if Submission.objects.filter(pk=submission_id, attempt=attempt, status__in=CLAIMED).update(
        status=Status.FAILED, finished_at=timezone.now(), failure_kind=FailureKind.INTERNAL,
        failure_message=f"The scoring worker stopped {MAX_LOST_WORKERS} times while scoring this submission, so "
        "it was not tried again. This does not count against your quota; the organizers have been told and can "
        "rescore it.",
    ):
        record_changed(submission_id=submission_id, reason=f"{MAX_LOST_WORKERS} workers stopped while scoring it")
        log.error("submission %s: %s workers stopped while scoring it; failed", submission_id, MAX_LOST_WORKERS)
        announce_end(submission_id)


@contextmanager
def _lease_kept(submission_id: int, attempt: int, owner: str) -> Iterator[None]:
    """Renew the lease on (submission, attempt) from a thread of its own until the block ends."""
    stop = threading.Event()

    def renew() -> None:
        try:
            while not stop.wait(settings.SCORING_LEASE_SECONDS / 4):
                try:
                    if not Submission.objects.filter(pk=submission_id, attempt=attempt, lease_owner=owner,
                                                     status__in=CLAIMED).update(lease_expires_at=_lease_until()):
                        return  # finished, failed, cancelled or taken over: nothing left to keep
                except Exception:  # the database blinked: try again at the next beat
                    log.warning("submission %s: could not renew its lease", submission_id, exc_info=True)
        finally:
            connection.close()  # this thread's own connection

    beat = threading.Thread(target=renew, name=f"lease-{submission_id}", daemon=True)
    beat.start()
    try:
        yield
    finally:
        stop.set()
        beat.join()


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


def _fail(submission: Submission, attempt: int, message: str, problems: list | None = None, *,
          kind: str, crash_report: str = "") -> None:
    if Submission.objects.filter(pk=submission.pk, attempt=attempt, status__in=Submission.ACTIVE).update(
        status=Status.FAILED, failure_message=message, problems=problems or [], finished_at=timezone.now(),
        failure_kind=kind, crash_report=crash_report,
    ):
        record_changed(submission_id=submission.pk, reason=f"failed: {FailureKind(kind).label}")
        announce_end(submission.pk)


def _crashed(submission: Submission, attempt: int, exc: Exception) -> None:
    """The scorer stopped on this file with an error it does not foresee: fail once, counted as the team's,
    the traceback kept for the organizers (and logged, for error reporting). Not retried: the same
    file would stop it again."""
    log.error("submission %s: the scorer crashed on the file", submission.pk, exc_info=exc)
    report = "".join(traceback.format_exception(exc))[-CRASH_REPORT_MAX:]
    _fail(submission, attempt,
          f"The scorer stopped on something in your file that it could not handle ({type(exc).__name__}). "
          "The organizers have the details. Check the file with `egomask validate`; this counts as one of your "
          "team's submissions.", kind=FailureKind.CRASHED, crash_report=report)


def _details_csv(evaluation: Evaluation) -> bytes:
    rows = [row.as_row() for row in evaluation.expressions]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["split"])
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


def _finish(submission_id: int, attempt: int, owner: str, evaluation: Evaluation, computed: Computed,
            seconds: float) -> None:
    with transaction.atomic():
        submission = Submission.objects.select_for_update().get(pk=submission_id)
        if submission.attempt != attempt or submission.status != Status.SCORING or submission.lease_owner != owner:
            return  # a newer attempt (rescore, reconcile, take-over) owns this submission now
        now = timezone.now()
        for split, summary in evaluation.summaries.items():
            values = {**summary.as_dict(), "n_expressions": summary.n_expressions, "ci": computed.ci.get(split) or {},
                      "scorer_version": evaluation.scorer_version, "gt_version": evaluation.gt_version}
            Score.objects.update_or_create(submission=submission, split=split, defaults=values)
            # The history keeps what this attempt gave, whatever replaces it later (a rescore).
            ScoreHistory.objects.update_or_create(submission=submission, attempt=attempt, split=split,
                                                  defaults={**values, "scored_at": now})
        Score.objects.filter(submission=submission).exclude(split__in=list(evaluation.summaries)).delete()
        submission.details.save("per-expression.csv", ContentFile(_details_csv(evaluation)), save=False)
        analysis_store(submission=submission, computed=computed)
        submission.status = Status.FINISHED
        submission.warnings = [w.as_dict() for w in evaluation.warnings]
        submission.failure_message, submission.problems = "", []
        submission.failure_kind, submission.crash_report, submission.retry_reason = "", "", ""
        submission.lease_expires_at = None
        submission.scorer_version, submission.gt_version = evaluation.scorer_version, evaluation.gt_version
        submission.finished_at, submission.scoring_seconds = now, seconds
        submission._change_reason = f"scored by {_by_worker(owner)}"  # the audit log's words (simple-history)
        submission.save()
        receipt_issue(submission=submission)  # signs what was just written: every scoring and rescore ends here
        announce_end(submission.pk)


def submission_fail_internal(*, submission_id: int, attempt: int, reason: str) -> None:
    """End an attempt that could not run for reasons that are not the team's fault."""
    if Submission.objects.filter(pk=submission_id, attempt=attempt, status__in=Submission.ACTIVE).update(
        status=Status.FAILED, finished_at=timezone.now(), failure_kind=FailureKind.INTERNAL,
        failure_message=f"{reason} This is not a problem with your file and does not count against your quota; "
        "the organizers can rescore it.",
    ):
        record_changed(submission_id=submission_id, reason=f"failed: {reason}")
        announce_end(submission_id)


def submission_retry(*, submission_id: int, attempt: int, reason: str = "",
                     enqueue: bool = True) -> Submission | None:
    """Start a new attempt of an active submission (after an internal error or a lost worker), waiting in
    `submitted`; `enqueue` False when the caller sends the task itself (a Celery retry)."""
    with transaction.atomic():
        submission = Submission.objects.select_for_update().filter(pk=submission_id, attempt=attempt,
                                                                   status__in=Submission.ACTIVE).first()
        if submission is None:
            return None
        submission.attempt += 1  # row locked; not F(): the history row copies it
        submission.status, submission.started_at = Status.SUBMITTED, None
        submission.lease_owner, submission.lease_expires_at, submission.queued_at = "", None, timezone.now()
        fields = ["attempt", "status", "started_at", "lease_owner", "lease_expires_at", "queued_at"]
        if reason:
            submission.retry_reason = reason
            fields.append("retry_reason")
        submission._change_reason = f"retry: {RetryReason(reason).label if reason in RetryReason.values else reason}"
        submission.save(update_fields=fields)
        submission.refresh_from_db()
        if enqueue:
            _enqueue(submission)
    return submission


def submissions_reconcile(*, now: dt.datetime | None = None,
                          enqueue: Callable[[Submission], None] | None = None) -> dict[str, int]:
    """Send what is not on its way and restart what a vanished worker left.

    `submitted` rows whose message could not be sent (`unsent`) go at once, and any other
    `submitted` row two minutes after it was last sent (a message lost with a broker's data, or
    consumed by a worker that could not reach the database); the same attempt, so if the first
    message still comes only one of the two claims it. A claimed row whose lease ran
    out (or, without a lease, that started longer than SCORING_STUCK_AFTER ago) is restarted as the
    next attempt, retrying after a worker stopped.
    """
    now = now or timezone.now()
    requeued = 0
    # Sent (by the upload, a retry, a rescore or an earlier reconcile) more than two minutes ago and still
    # waiting: sent again, at most once every two minutes, so a long queue is not flooded with repeats.
    quiet = now - dt.timedelta(minutes=2)
    waiting = Submission.objects.filter(Q(unsent=True) | Q(queued_at__lt=quiet)
                                        | Q(queued_at__isnull=True, submitted_at__lt=quiet),
                                        status=Status.SUBMITTED)
    for submission in waiting:
        with transaction.atomic():
            Submission.objects.filter(pk=submission.pk, attempt=submission.attempt).update(unsent=False,
                                                                                           queued_at=now)
            (enqueue or _enqueue)(submission)
        requeued += 1
    restarted = 0
    expired = Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True,
                                              started_at__lt=now - dt.timedelta(seconds=settings.SCORING_STUCK_AFTER))
    for submission in Submission.objects.filter(expired, status__in=CLAIMED):
        if submission.lost_workers >= MAX_LOST_WORKERS - 1:
            _stopped_too_often(submission.pk, submission.attempt)
            continue
        with transaction.atomic():
            # The lease is checked again under the row lock: a worker that renewed it since is alive.
            if not Submission.objects.select_for_update().filter(expired, pk=submission.pk,
                                                                 attempt=submission.attempt).exists():
                continue
            Submission.objects.filter(pk=submission.pk).update(lost_workers=F("lost_workers") + 1)
            retried = submission_retry(submission_id=submission.pk, attempt=submission.attempt,
                                       reason=RetryReason.WORKER_LOST, enqueue=False)
            if retried is not None:
                (enqueue or _enqueue)(retried)
                restarted += 1
    return {"requeued": requeued, "restarted": restarted}

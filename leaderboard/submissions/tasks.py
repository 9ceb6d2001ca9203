"""Celery tasks: thin. Each fetches by id and calls a service; retries and failures live here.

Their names are queue.py's constants: services send them by name, so nothing imports this module
but the worker.
"""

from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError

from . import grading, queue, snapshots, uploads
from .models import RetryReason

log = logging.getLogger(__name__)
MAX_RETRIES = 3


@shared_task(
    bind=True,
    name=queue.SCORE_SUBMISSION,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.SCORING_SOFT_TIME_LIMIT,
    time_limit=settings.SCORING_TIME_LIMIT,
    max_retries=MAX_RETRIES,
)
def score_submission(self, submission_id: int, attempt: int) -> None:  # type: ignore[no-untyped-def]
    try:
        grading.submission_score(submission_id=submission_id, attempt=attempt)
    except SoftTimeLimitExceeded:
        grading.submission_fail_internal(
            submission_id=submission_id, attempt=attempt,
            reason=f"Scoring took longer than {settings.SCORING_SOFT_TIME_LIMIT} seconds and was stopped.",
        )
    except Exception as exc:
        # Ours, not the file's (its problems, and its crashes of the scorer, end as "failed" inside the
        # service): storage, the database. Retry as a new attempt with backoff, then give up loudly.
        log.exception("scoring submission %s attempt %s failed", submission_id, attempt)
        if self.request.retries < MAX_RETRIES:
            countdown = 15 * 2**self.request.retries
            try:
                retry = grading.submission_retry(submission_id=submission_id, attempt=attempt,
                                                 reason=RetryReason.INTERNAL, enqueue=False)
            except DatabaseError:
                # The database is what failed: nothing can be recorded now, so the same attempt is tried
                # again later (it takes over its own lease once that has run out).
                raise self.retry(exc=exc, countdown=countdown) from None
            if retry is None:
                return  # a newer attempt, or a final state, owns the submission now
            raise self.retry(args=(submission_id, retry.attempt), exc=exc, countdown=countdown) from None
        grading.submission_fail_internal(
            submission_id=submission_id, attempt=attempt,
            reason="An internal error stopped the scoring of this submission.",
        )


@shared_task(name=queue.RECONCILE_SUBMISSIONS, acks_late=True)
def reconcile_submissions() -> dict[str, int]:
    return grading.submissions_reconcile()


@shared_task(name=queue.CLEAN_UP_UPLOADS, acks_late=True)
def clean_up_uploads() -> int:
    return uploads.uploads_cleanup()


@shared_task(name=queue.SNAPSHOT_BOARDS, acks_late=True)
def snapshot_boards() -> int:
    return snapshots.board_snapshots_take_due()

"""Send Celery tasks by name once the current transaction commits.

By name, so that nothing here imports tasks.py (tasks call services; services queue tasks: importing
each other would make a circle). A worker never sees a message for a row that was not committed,
and a broker outage does not undo the commit: the message is logged as not sent and the reconciler
(`grading.submissions_reconcile`, every RECONCILE_EVERY seconds) sends it again later.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from leaderboard.celery import app as celery_app

log = logging.getLogger(__name__)

SCORE_SUBMISSION = "leaderboard.submissions.tasks.score_submission"
RECONCILE_SUBMISSIONS = "leaderboard.submissions.tasks.reconcile_submissions"
CLEAN_UP_UPLOADS = "leaderboard.submissions.tasks.clean_up_uploads"
TASK_NAMES = (SCORE_SUBMISSION, RECONCILE_SUBMISSIONS, CLEAN_UP_UPLOADS)


def send_on_commit(name: str, *args: Any) -> None:
    """Queue task `name` with `args` when the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: _send(name, args))


def _send(name: str, args: tuple[Any, ...]) -> None:
    try:
        celery_app.send_task(name, args=args)
    except Exception:
        # The row is committed and stays `submitted`; the reconciler re-sends it. Failing the
        # request here would tell the team their upload was refused when it was not.
        log.exception("could not send %s%r; the reconciler will send it again", name, args)


def score_on_commit(*, submission_id: int, attempt: int) -> None:
    """Queue the scoring of one attempt of a submission once the current transaction commits."""
    send_on_commit(SCORE_SUBMISSION, submission_id, attempt)

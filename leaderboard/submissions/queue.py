"""Send Celery tasks by name once the current transaction commits.

By name, so that nothing here imports tasks.py (tasks call services; services queue tasks: importing
each other would make a circle). A worker never sees a message for a row that was not committed,
and a broker outage does not undo the commit: the message is logged as not sent and the reconciler
(`grading.submissions_reconcile`, every RECONCILE_EVERY seconds, on the `maintenance` queue) sends it
again once the broker is back; a scoring message that could not be sent marks its submission
`unsent`, so the reconciler sends it at once instead of waiting to suspect a lost message.

Sending never waits on Celery's result store (these tasks return nothing anyone reads) and gives up
quickly (CELERY_TASK_PUBLISH_RETRY_POLICY): a request whose row is saved answers at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import transaction
from kombu.exceptions import OperationalError as KombuOperationalError

from leaderboard.celery import app as celery_app

from .models import Submission

log = logging.getLogger(__name__)

SCORE_SUBMISSION = "leaderboard.submissions.tasks.score_submission"
RECONCILE_SUBMISSIONS = "leaderboard.submissions.tasks.reconcile_submissions"
CLEAN_UP_UPLOADS = "leaderboard.submissions.tasks.clean_up_uploads"
SNAPSHOT_BOARDS = "leaderboard.submissions.tasks.snapshot_boards"
TASK_NAMES = (SCORE_SUBMISSION, RECONCILE_SUBMISSIONS, CLEAN_UP_UPLOADS, SNAPSHOT_BOARDS)


def send_on_commit(name: str, *args: Any, on_failure: Callable[[], None] | None = None) -> None:
    """Queue task `name` with `args` when the current transaction commits (at once outside one);
    `on_failure` runs if the broker cannot take it."""
    transaction.on_commit(lambda: send(name, args, on_failure=on_failure))


def send(name: str, args: tuple[Any, ...], *, on_failure: Callable[[], None] | None = None) -> bool:
    """Send task `name` now; False (logged, `on_failure` run) when the broker could not take it."""
    try:
        celery_app.send_task(name, args=args, ignore_result=True)
    except Exception as exc:
        # The row is committed and stays `submitted`; the reconciler re-sends it. Failing the
        # request here would tell the team their upload was refused when it was not.
        log.error("could not send %s%r (%s: %s); the reconciler will send it again", name, args,
                  type(exc).__name__, exc, exc_info=not isinstance(exc, KombuOperationalError | OSError))
        if on_failure is not None:
            try:
                on_failure()
            except Exception:  # the database may be down too: the reconciler still finds the row by age
                log.exception("could not record that %s%r was not sent", name, args)
        return False
    return True


def score_on_commit(*, submission_id: int, attempt: int) -> None:
    """Queue the scoring of one attempt of a submission once the current transaction commits."""
    send_on_commit(SCORE_SUBMISSION, submission_id, attempt,
                   on_failure=lambda: Submission.objects.filter(pk=submission_id, attempt=attempt).update(unsent=True))

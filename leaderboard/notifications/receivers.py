"""The one signal this app listens to: a submission's attempt ended."""

from __future__ import annotations

import logging
from typing import Any

from leaderboard.submissions.models import Submission

from .services import submission_mail_queue

log = logging.getLogger(__name__)


def mail_submitter(sender: type[Submission], submission: Submission, **kwargs: Any) -> None:
    """Queue the submitter's mail; a failure to queue is logged by queue.py and never reaches the scorer."""
    try:
        submission_mail_queue(submission=submission)
    except Exception:  # a mail is never worth failing the code that ended the attempt
        log.exception("could not queue the mail for submission %s", submission.pk)

"""What the submissions app tells other apps, so that they can follow a submission without the
scoring code knowing them (the baselines app finishes a run when its submission ends).

Status changes are conditional UPDATEs, which Django's model signals do not see: the code that
ends an attempt calls `announce_end`, and the signal goes out once the change is committed.
"""

from __future__ import annotations

from django.db import transaction
from django.dispatch import Signal

#: An attempt ended: the submission finished, failed or was cancelled. Sent after the commit with
#: `submission`, the row as it is then.
submission_ended = Signal()


def announce_end(submission_id: int) -> None:
    """Send `submission_ended` for this submission once the current transaction commits."""

    def send() -> None:
        from .models import Submission

        submission = Submission.objects.filter(pk=submission_id).first()
        if submission is not None and submission.is_terminal:
            submission_ended.send(sender=Submission, submission=submission)

    transaction.on_commit(send)

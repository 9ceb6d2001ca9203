"""What the submissions app tells other apps, so that they can follow a submission without the
scoring code knowing them (the baselines app finishes a run when its submission ends).

Status changes are conditional UPDATEs, which Django's model signals do not see: the code that
ends an attempt calls `announce_end`, and the signal goes out once the change is committed. An ended
attempt can also join a board or leave it (a rescore that failed), so `announce_end` rebuilds the
phase's boards there and then, in the caller's transaction (boards.py).
"""

from __future__ import annotations

from django.db import transaction
from django.dispatch import Signal

from .boards import submission_board_changed

#: An attempt ended: the submission finished, failed or was cancelled. Sent after the commit with
#: `submission`, the row as it is then.
submission_ended = Signal()


def announce_end(submission_id: int) -> None:
    """Rebuild the submission's boards now and send `submission_ended` once the current transaction commits."""
    submission_board_changed(submission_id=submission_id)

    def send() -> None:
        from .models import Submission

        submission = Submission.objects.filter(pk=submission_id).first()
        if submission is not None and submission.is_terminal:
            submission_ended.send(sender=Submission, submission=submission)

    transaction.on_commit(send)

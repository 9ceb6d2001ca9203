"""The one signal this app listens to: a baseline submission was saved by the scorer."""

from __future__ import annotations

from typing import Any

from leaderboard.submissions.models import Submission

from .services import baseline_run_follow_scoring


def follow_baseline_scoring(sender: type[Submission], instance: Submission, created: bool, **kwargs: Any) -> None:
    """The scorer saves a submission when it finishes it: a run waiting on it is then finished too."""
    if instance.is_baseline and not created and instance.status in Submission.TERMINAL:
        baseline_run_follow_scoring(submission=instance)

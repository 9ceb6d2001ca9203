"""The one signal this app listens to: a baseline submission's attempt ended."""

from __future__ import annotations

from typing import Any

from leaderboard.submissions.models import Submission

from .services import baseline_run_follow_scoring


def follow_baseline_scoring(sender: type[Submission], submission: Submission, **kwargs: Any) -> None:
    """A run waiting on its submission ends with it: finished, or failed with the scorer's words."""
    if submission.is_baseline:
        baseline_run_follow_scoring(submission=submission)

"""Reads for baselines: where each baseline row of a board comes from (a runner here, an upload, or
a paper), which runner baselines a newer run of the same runner has replaced, the reported rows of
a board, and a run's progress."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from leaderboard.challenges.models import Phase
from leaderboard.challenges.permissions import Can, organizer_can
from leaderboard.submissions.models import Submission

from .models import BaselineRun, ReportedResult, ShardRun


def baseline_provenance(*, submission_ids: Iterable[int]) -> dict[int, dict[str, object]]:
    """For each baseline submission: {"kind": "runner", "runner", "version", "run"} when a run here made
    it, else {"kind": "uploaded", "runner": None, "version": None} (an organizer uploaded the zip)."""
    ids = list(submission_ids)
    found = {run.submission_id: {"kind": "runner", "runner": run.runner, "version": run.runner_version,
                                 "run": run.pk}
             for run in BaselineRun.objects.filter(submission_id__in=ids).only("submission_id", "runner",
                                                                              "runner_version")}
    return {pk: found.get(pk, {"kind": "uploaded", "runner": None, "version": None}) for pk in ids}


def superseded_baselines(*, phase: Phase) -> set[int]:
    """Submissions of runs that a newer run of the same runner on the phase replaces on the board.

    A newer run replaces the older ones only once its submission has scores (it is finished, or
    being rescored with its scores kept), so the previous row shows until then.
    """
    on_board = (BaselineRun.objects.filter(phase=phase, submission__isnull=False, submission__hidden=False,
                                           submission__status__in=[Submission.Status.FINISHED, *Submission.ACTIVE],
                                           submission__scores__isnull=False)
                .distinct().order_by("runner", "-created_at", "-id").values_list("runner", "submission_id"))
    newest: set[str] = set()
    superseded: set[int] = set()
    for runner, submission_id in on_board:
        if runner in newest:
            superseded.add(submission_id)
        newest.add(runner)
    return superseded


def reported_for_board(*, phase: Phase, split: str) -> list[ReportedResult]:
    """The reported rows that give at least one number for this board."""
    return [row for row in ReportedResult.objects.filter(phase=phase).order_by("method", "id")
            if isinstance(row.values.get(split), dict) and row.values[split]]


@dataclass(frozen=True)
class RunProgress:
    expressions_done: int
    expressions_total: int
    frames_done: int
    frames_total: int
    frames_per_second: float  # all shards together
    shards_finished: int
    shards: int


def run_progress(*, run: BaselineRun) -> RunProgress:
    """A run's progress over its shards (each shard's frames/s adds up: they run side by side)."""
    shards = list(run.shard_runs.all())
    return RunProgress(
        expressions_done=sum(s.expressions_done for s in shards),
        expressions_total=sum(s.expressions_total for s in shards),
        frames_done=sum(s.frames_done for s in shards),
        frames_total=sum(s.frames_total for s in shards),
        frames_per_second=sum(s.frames_per_second for s in shards if s.status == ShardRun.Status.RUNNING)
        or sum(s.frames_per_second for s in shards),
        shards_finished=sum(1 for s in shards if s.status == ShardRun.Status.FINISHED),
        shards=len(shards),
    )


def run_visible(*, run: BaselineRun, viewer: AbstractBaseUser | AnonymousUser) -> bool:
    """Organizers see every run; anyone else a run whose submission they may see (on a public board)."""
    # submissions.selectors reads this module for the boards: import it here, not at the top.
    from leaderboard.submissions.selectors import submission_access

    if organizer_can(viewer, run.phase.challenge_id, Can.VIEW):
        return True
    return run.submission is not None and submission_access(submission=run.submission, user=viewer).view

"""Switching a phase to another ground-truth version, and the rescore that follows it.

`phase_set_ground_truth` is the one way a phase changes its ground truth: the admin's phase form,
`challenge_apply` and `manage.py set_ground_truth` call it. A switch rescores, as new attempts, the
submissions whose scores (or failure) came from what the phase no longer scores with:

- finished ones whose scores are not already against the new version (so a repeated switch, or a
  switch back to a version a submission was last scored with, scores nothing twice);
- failed ones whose failure the ground truth may explain: `invalid` (the file did not fit the old
  ground truth: videos, expressions, frames) and `internal` (no usable ground truth). A file that
  `crashed` the scorer is not tried again on its own (the scorer did not change; an organizer can
  rescore it by hand), and cancelled ones stay cancelled;
- ones a worker is scoring right now (validating, scoring), which may have loaded the old version:
  the new attempt supersedes theirs, whose result is then discarded. Waiting ones (`submitted`)
  load the new version when a worker claims them.

While a submission is rescored its previous scores stay on the board, marked `rescoring`
(selectors.board_entries); the new attempt's scores replace them when it finishes. An attempt that
fails takes the row off the board: its old scores were made against a ground truth the phase no
longer uses, so ranking it with them would compare numbers on different data. The history
(ScoreHistory) keeps every score set, and the team sees why the new attempt failed.

Each new attempt is one message on the scoring queue, claimed by (submission, attempt): a message
delivered twice scores once (grading.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q, QuerySet

from leaderboard.challenges.models import GroundTruthBundle, Phase
from leaderboard.challenges.permissions import Can, organizer_can
from leaderboard.errors import ApplicationError, NotAllowed

from .boards import boards_deferred
from .models import FailureKind, Submission
from .services import submission_rescore

Status = Submission.Status


@dataclass(frozen=True)
class GroundTruthSwitch:
    changed: bool  # False: the phase already scored with this bundle (nothing done)
    rescored: int  # submissions queued for a new attempt


def stale_submissions(*, phase: Phase, version: str) -> QuerySet[Submission]:
    """The submissions of the phase that a switch to the ground truth `version` rescores (see the module)."""
    finished = Q(status=Status.FINISHED) & ~Q(gt_version=version)
    failed = Q(status=Status.FAILED, failure_kind__in=[FailureKind.INVALID, FailureKind.INTERNAL])
    claimed = Q(status__in=[Status.VALIDATING, Status.SCORING])
    return phase.submissions.filter(finished | failed | claimed).order_by("id")


def phase_set_ground_truth(*, phase: Phase, bundle: GroundTruthBundle | None, by: AbstractBaseUser | None
                           ) -> GroundTruthSwitch:
    """Make `bundle` the phase's ground truth (None: none) and rescore what it makes stale, in one transaction.

    Refused (ApplicationError) for a bundle of another challenge or one that is not ready (pending its check,
    or invalid); NotAllowed without Can.CONFIGURE on the phase's challenge. The same bundle again is a no-op.
    """
    if not organizer_can(by, phase.challenge_id, Can.CONFIGURE):
        raise NotAllowed(f"You may not change the ground truth of {phase}: that needs the right to configure "
                         "its challenge.")
    if bundle is not None:
        if bundle.challenge_id != phase.challenge_id:
            raise ApplicationError(f"The ground truth {bundle.name!r} belongs to another challenge.")
        if bundle.status != GroundTruthBundle.Status.READY:
            why = f": {bundle.message}" if bundle.message else " (its check has not finished)"
            raise ApplicationError(f"The ground truth {bundle.name!r} is {bundle.status}{why}; only a ready bundle "
                                   "can score a phase.")
    with transaction.atomic(), boards_deferred():
        locked = Phase.objects.select_for_update().get(pk=phase.pk)
        if locked.ground_truth_id == (bundle.pk if bundle else None):
            return GroundTruthSwitch(changed=False, rescored=0)
        locked.ground_truth = bundle
        locked._history_user = by  # type: ignore[attr-defined]  # the audit log's author (django-simple-history)
        locked.save(update_fields=["ground_truth"])
        rescored = 0
        if bundle is not None:
            for submission in stale_submissions(phase=locked, version=bundle.version):
                submission_rescore(submission=submission, by=by,
                                   reason=f"the ground truth is now {bundle.name} ({bundle.version[:12]})")
                rescored += 1
    phase.ground_truth = bundle
    return GroundTruthSwitch(changed=True, rescored=rescored)

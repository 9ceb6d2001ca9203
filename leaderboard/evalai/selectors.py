"""Reads the evalai compatibility layer needs that no other app has: objects by numeric id.

The evalai CLI names challenges, phases and boards by id (our pages use slugs). What a viewer may
see follows the rest of the site: an unpublished challenge, its phases and boards only for
organizers.
"""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from leaderboard.challenges.models import Challenge, Phase, PhaseSplit
from leaderboard.submissions.models import Upload

Viewer = AbstractBaseUser | AnonymousUser


def _may_see(challenge: Challenge, viewer: Viewer) -> bool:
    return challenge.is_published or bool(viewer.is_authenticated and viewer.is_staff)


def challenge_by_id(*, challenge_id: int, viewer: Viewer) -> Challenge | None:
    challenge = Challenge.objects.prefetch_related("phases").filter(pk=challenge_id).first()
    return challenge if challenge is not None and _may_see(challenge, viewer) else None


def phase_by_id(*, phase_id: int, viewer: Viewer, challenge_id: int | None = None) -> Phase | None:
    """A phase by id (of `challenge_id` when given), with its challenge."""
    phases = Phase.objects.select_related("challenge").filter(pk=phase_id)
    if challenge_id is not None:
        phases = phases.filter(challenge_id=challenge_id)
    phase = phases.first()
    return phase if phase is not None and _may_see(phase.challenge, viewer) else None


def phase_split_by_id(*, split_id: int, viewer: Viewer) -> PhaseSplit | None:
    split = PhaseSplit.objects.select_related("phase__challenge").filter(pk=split_id).first()
    return split if split is not None and _may_see(split.phase.challenge, viewer) else None


def challenge_phase_splits(*, challenge: Challenge) -> QuerySet[PhaseSplit]:
    """Every board of every phase of a challenge, phase by phase in display order."""
    return (PhaseSplit.objects.filter(phase__challenge=challenge).select_related("phase")
            .order_by("phase__order", "phase_id", "order", "id"))


def upload_by_id(*, upload_id: uuid.UUID) -> Upload | None:
    return Upload.objects.select_related("phase__challenge", "submission").filter(pk=upload_id).first()

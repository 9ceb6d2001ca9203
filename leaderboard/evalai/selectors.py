"""Reads only the evalai compatibility layer needs (the by-id reads are the apps' selectors).

The evalai CLI names challenges, phases and boards by id (our pages use slugs). What a viewer may
see follows the rest of the site: an unpublished challenge, its phases and boards only for
organizers.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from leaderboard.challenges.models import Challenge, Phase, PhaseSplit
from leaderboard.challenges.selectors import challenge_is_visible, phase_get_by_id

Viewer = AbstractBaseUser | AnonymousUser

def phase_in_challenge(*, phase_id: int, viewer: Viewer, challenge_id: int | None = None) -> Phase | None:
    """A phase by id, and only if it belongs to `challenge_id` when that is given (the CLI names both)."""
    phase = phase_get_by_id(phase_id=phase_id, viewer=viewer)
    if phase is None or (challenge_id is not None and phase.challenge_id != challenge_id):
        return None
    return phase


def phase_split_by_id(*, split_id: int, viewer: Viewer) -> PhaseSplit | None:
    split = PhaseSplit.objects.select_related("phase__challenge").filter(pk=split_id).first()
    return split if split is not None and challenge_is_visible(challenge=split.phase.challenge, viewer=viewer) else None


def challenge_phase_splits(*, challenge: Challenge) -> QuerySet[PhaseSplit]:
    """Every board of every phase of a challenge, phase by phase in display order."""
    return (PhaseSplit.objects.filter(phase__challenge=challenge).select_related("phase")
            .order_by("phase__order", "phase_id", "order", "id"))

"""Reads for challenges and phases."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Prefetch, QuerySet

from scoring import SPLITS

from .models import SPLIT_ORDER, Challenge, Phase, PhaseSplit
from .permissions import Can, organizer_can


def challenge_list() -> QuerySet[Challenge]:
    return Challenge.objects.filter(is_published=True).prefetch_related("phases")


def phase_list(*, challenge: Challenge) -> QuerySet[Phase]:
    return challenge.phases.order_by("order", "id").prefetch_related("splits")


def phase_boards(*, phase: Phase) -> list[str]:
    """The boards of a phase in display order (all four if the phase has no split rows yet)."""
    return [s.code for s in phase.splits.all()] or list(SPLIT_ORDER)


Viewer = AbstractBaseUser | AnonymousUser


def challenge_is_visible(*, challenge: Challenge, viewer: Viewer | None) -> bool:
    """The one rule: a published challenge (its phases, boards) for everyone, an unpublished one for its organizers."""
    return challenge.is_published or organizer_can(viewer, challenge, Can.VIEW)


def challenge_get(*, slug: str, viewer: Viewer | None = None) -> Challenge | None:
    """A challenge by slug; an unpublished one only for organizers."""
    challenge = Challenge.objects.filter(slug=slug).first()
    return challenge if challenge is not None and challenge_is_visible(challenge=challenge, viewer=viewer) else None


def _with_splits(phases: QuerySet[Phase]) -> QuerySet[Phase]:
    # One phase's boards in their order: the models' default ordering would join the phase and the
    # challenge into the query for nothing (these lookups answer every leaderboard request).
    return phases.prefetch_related(Prefetch("splits", queryset=PhaseSplit.objects.order_by("order", "id")))


def phase_get(*, challenge: Challenge, slug: str, related: tuple[str, ...] = ()) -> Phase | None:
    """A challenge's phase by slug, with its splits (and the one-to-one relations `related`, in the same query)."""
    phases = challenge.phases.select_related(*related) if related else challenge.phases.all()
    return _with_splits(phases.filter(slug=slug)).order_by().first()


def challenge_get_by_id(*, challenge_id: int, viewer: Viewer | None = None) -> Challenge | None:
    """A challenge by id; an unpublished one only for organizers."""
    challenge = Challenge.objects.filter(pk=challenge_id).first()
    return challenge if challenge is not None and challenge_is_visible(challenge=challenge, viewer=viewer) else None


def phase_get_by_id(*, phase_id: int, viewer: Viewer | None = None, related: tuple[str, ...] = ()) -> Phase | None:
    """A phase by id, with its challenge and splits (and the one-to-one relations `related`, in the same
    query); one of an unpublished challenge only for organizers."""
    phase = _with_splits(Phase.objects.select_related("challenge", *related).filter(pk=phase_id)).order_by().first()
    return phase if phase is not None and challenge_is_visible(challenge=phase.challenge, viewer=viewer) else None


def phase_example_inputs(*, phase: Phase) -> tuple[dict, tuple[str, ...]] | None:
    """The public inputs of the phase's checked ground truth and the splits it scores, or None.

    Public inputs are what participants may see anyway (videos, frames, expressions, no mask),
    recorded when the ground truth was checked: an example made from them never reads the ground truth.
    """
    bundle = phase.ground_truth
    if bundle is None or bundle.status != bundle.Status.READY or not bundle.public_inputs:
        return None
    splits = tuple(code for code in phase_boards(phase=phase) if code in SPLITS) or SPLITS
    return bundle.public_inputs, splits

"""Reads for challenges and phases."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet
from django.utils import timezone

from .models import Challenge, Phase


def challenge_list() -> QuerySet[Challenge]:
    return Challenge.objects.filter(is_published=True).prefetch_related("phases")


def phase_list(*, challenge: Challenge) -> QuerySet[Phase]:
    return challenge.phases.order_by("order", "id").prefetch_related("splits")


@dataclass(frozen=True)
class Quota:
    """What is left of a team's quota in a phase; None means unlimited."""

    per_day: int | None
    per_day_left: int | None
    total: int | None
    total_left: int | None
    resets_at: dt.datetime  # start of the next UTC day, when the daily count starts over

    @property
    def exhausted(self) -> bool:
        return self.per_day_left == 0 or self.total_left == 0


def day_start(now: dt.datetime) -> dt.datetime:
    return now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def quota_for(*, phase: Phase, team_id: int | None, now: dt.datetime | None = None) -> Quota:
    """Failed and cancelled submissions use no quota; baselines (no team) have none."""
    from leaderboard.submissions.models import Submission  # submissions depend on challenges, not back

    now = now or timezone.now()
    start = day_start(now)
    counted = Submission.objects.filter(phase=phase, team_id=team_id, status__in=Submission.COUNTED)
    today = counted.filter(submitted_at__gte=start).count() if phase.max_per_day is not None else 0
    total = counted.count() if phase.max_total is not None else 0
    return Quota(
        per_day=phase.max_per_day,
        per_day_left=None if phase.max_per_day is None else max(0, phase.max_per_day - today),
        total=phase.max_total,
        total_left=None if phase.max_total is None else max(0, phase.max_total - total),
        resets_at=start + dt.timedelta(days=1),
    )


def challenge_get(*, slug: str, viewer: AbstractBaseUser | AnonymousUser | None = None) -> Challenge | None:
    """A challenge by slug; an unpublished one only for organizers."""
    challenge = Challenge.objects.filter(slug=slug).first()
    if challenge is None or challenge.is_published or (viewer is not None and viewer.is_staff):
        return challenge
    return None


def phase_get(*, challenge: Challenge, slug: str) -> Phase | None:
    return challenge.phases.prefetch_related("splits").filter(slug=slug).first()


def challenge_get_by_id(*, challenge_id: int, viewer: AbstractBaseUser | AnonymousUser | None = None
                        ) -> Challenge | None:
    """A challenge by id; an unpublished one only for organizers."""
    challenge = Challenge.objects.filter(pk=challenge_id).first()
    if challenge is None or challenge.is_published or (viewer is not None and viewer.is_staff):
        return challenge
    return None


def phase_get_by_id(*, phase_id: int, viewer: AbstractBaseUser | AnonymousUser | None = None) -> Phase | None:
    """A phase by id, with its challenge and splits; one of an unpublished challenge only for organizers."""
    phase = Phase.objects.select_related("challenge").prefetch_related("splits").filter(pk=phase_id).first()
    if phase is None or phase.challenge.is_published or (viewer is not None and viewer.is_staff):
        return phase
    return None

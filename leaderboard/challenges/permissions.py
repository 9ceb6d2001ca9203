"""STAND-IN until the lead's per-challenge hosts land on main (that file replaces this one whole): the same
interface, `organizer_can(user, challenge, what)` and `challenges_where(user, what)`, answering with the
rule the site has today (staff run every challenge, nobody else runs any)."""

from __future__ import annotations

from enum import StrEnum

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from .models import Challenge


class Can(StrEnum):
    VIEW = "view"
    MODERATE = "moderate"
    CONFIGURE = "configure"
    MANAGE_HOSTS = "manage_hosts"


User = AbstractBaseUser | AnonymousUser | None


def organizer_can(user: User, challenge: Challenge | int | None, what: Can) -> bool:
    """Whether the user may do `what` on the challenge as one of its organizers."""
    if user is None or not user.is_authenticated or not user.is_active or challenge is None:
        return False
    return bool(user.is_staff)


def challenges_where(user: User, what: Can) -> QuerySet[Challenge]:
    """The challenges on which the user may do `what`."""
    if user is None or not user.is_authenticated or not user.is_active or not user.is_staff:
        return Challenge.objects.none()
    return Challenge.objects.all()

"""Who may do what on a challenge: the one permission rule for organizers.

Every organizer question (see a private board, every team and submission, an export; moderate; configure;
choose the hosts) is asked here, by the admin, the commands, the API, the pages and the services alike.
Staff users run every challenge; anyone else runs the challenges where they are a host (models.Host), with
what their role grants (GRANTS). A host of one challenge has no power on another.
"""

from __future__ import annotations

from enum import StrEnum

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from .models import Challenge, Host


class Can(StrEnum):
    VIEW = "view"  # private boards and phases, every team and submission, dashboards, exports, downloads
    MODERATE = "moderate"  # hide, flag, rescore, mark as baseline, disqualify, announce, run baselines
    CONFIGURE = "configure"  # the challenge, its phases, quotas, dates, ground truth; apply its YAML
    MANAGE_HOSTS = "manage_hosts"  # who the hosts are and their roles


GRANTS: dict[str, frozenset[Can]] = {
    Host.Role.VIEWER: frozenset({Can.VIEW}),
    Host.Role.ORGANIZER: frozenset({Can.VIEW, Can.MODERATE, Can.CONFIGURE}),
    Host.Role.OWNER: frozenset(Can),
}

User = AbstractBaseUser | AnonymousUser | None


def _roles_granting(what: Can) -> list[str]:
    return [role for role, grants in GRANTS.items() if what in grants]


def organizer_can(user: User, challenge: Challenge | int | None, what: Can) -> bool:
    """Whether the user may do `what` on the challenge (an object or its id) as one of its organizers."""
    if user is None or not user.is_authenticated or not user.is_active or challenge is None:
        return False
    if user.is_staff:
        return True
    role = _roles_of(user).get(challenge if isinstance(challenge, int) else challenge.pk)
    return role is not None and what in GRANTS[role]


def _roles_of(user: AbstractBaseUser) -> dict[int, str]:
    """{challenge id: role} of a user, read once per user object (a request's user lives one request; the
    host services drop it when they change a user's rows, see forget_roles)."""
    cached = getattr(user, "_host_roles", None)
    if cached is None:
        cached = dict(Host.objects.filter(user=user).values_list("challenge_id", "role"))
        user._host_roles = cached  # type: ignore[attr-defined]
    return cached


def challenges_where(user: User, what: Can) -> QuerySet[Challenge]:
    """The challenges on which the user may do `what` (the same rule as organizer_can, as a query)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return Challenge.objects.none()
    if user.is_staff:
        return Challenge.objects.all()
    return Challenge.objects.filter(hosts__user=user, hosts__role__in=_roles_granting(what))


def organizes_anything(user: User) -> bool:
    """Whether the user runs any challenge at all (the admin's door and its link in the menu)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return user.is_staff or bool(_roles_of(user))


def forget_roles(user: User) -> None:
    """Drop the per-request cache of a user's roles (after their host rows changed)."""
    if user is not None and hasattr(user, "_host_roles"):
        del user._host_roles

"""The `--phase P [--challenge C]` and `--user U` arguments the baselines commands share."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from leaderboard.challenges.models import Phase


def find_phase(phase: str, challenge: str | None) -> Phase:
    """The phase of that slug (in that challenge); one sentence when there is none or more than one."""
    phases = Phase.objects.select_related("challenge", "ground_truth").filter(slug=phase)
    if challenge:
        phases = phases.filter(challenge__slug=challenge)
    found = list(phases[:2])
    if not found:
        raise CommandError(f"There is no phase {phase!r}" + (f" in the challenge {challenge!r}." if challenge else "."))
    if len(found) > 1:
        raise CommandError(f"Several challenges have a phase {phase!r}: name one with --challenge.")
    return found[0]


def find_organizer(username: str | None):  # type: ignore[no-untyped-def]
    """The organizer a command acts as: --user, else the only superuser."""
    users = get_user_model().objects
    if username:
        user = users.filter(username=username).first()
        if user is None:
            raise CommandError(f"There is no user {username!r}.")
        return user
    supers = list(users.filter(is_superuser=True, is_active=True)[:2])
    if len(supers) != 1:
        raise CommandError("Say which organizer queues the run (its submission is theirs): --user USERNAME.")
    return supers[0]

"""The `--phase P [--challenge C]` argument the baselines commands share (--user: leaderboard.commandkit)."""

from __future__ import annotations

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

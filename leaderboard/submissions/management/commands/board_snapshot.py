"""`manage.py board_snapshot CHALLENGE/PHASE [--as USERNAME] [--reason TEXT]`: take a citable snapshot of a phase's
revealed boards (submissions/snapshots.py), as an organizer who may configure its challenge."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from leaderboard.challenges.models import Phase
from leaderboard.commandkit import acting_user
from leaderboard.errors import ApplicationError
from leaderboard.submissions.snapshots import board_snapshot_take, snapshot_url


class Command(BaseCommand):
    help = "Take a board snapshot of a phase (a public, numbered copy of its boards to cite)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("phase", metavar="CHALLENGE/PHASE", help="the challenge and phase slugs, e.g. egomask/test")
        parser.add_argument("--as", dest="username", metavar="USERNAME",
                            help="the organizer who takes it (default: the only superuser)")
        parser.add_argument("--reason", default="taken from the command line", help="recorded with the snapshot")

    def handle(self, *args: object, phase: str, username: str | None, reason: str, **options: object) -> None:
        challenge_slug, slash, phase_slug = phase.partition("/")
        if not slash or not challenge_slug or not phase_slug:
            raise CommandError(f"{phase!r}: write the phase as CHALLENGE/PHASE (the slugs), e.g. egomask/test.")
        target = Phase.objects.select_related("challenge").filter(challenge__slug=challenge_slug,
                                                                  slug=phase_slug).first()
        if target is None:
            raise CommandError(f"There is no phase {phase_slug!r} in a challenge {challenge_slug!r}.")
        actor = acting_user(username)
        before = target.snapshots.count()
        try:
            snapshot = board_snapshot_take(phase=target, by=actor, reason=reason)
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        new = target.snapshots.count() > before
        self.stdout.write(f"{'Snapshot' if new else 'Unchanged since snapshot'} {snapshot.number} of {target}: "
                          f"{snapshot_url(phase=target, number=snapshot.number)} (sha256 {snapshot.sha256}).")

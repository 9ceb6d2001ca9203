"""Rescore every finished or failed submission of a phase, e.g. after attaching a new ground truth."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from leaderboard.commandkit import acting_user
from leaderboard.challenges.models import Phase
from leaderboard.errors import ApplicationError
from leaderboard.submissions.services import phase_rescore


class Command(BaseCommand):
    help = "Queue a new scoring attempt for every finished or failed submission of a phase."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("challenge", help="challenge slug")
        parser.add_argument("phase", help="phase slug")
        parser.add_argument("--user", help="the organizer who rescores (default: the only superuser)")
        parser.add_argument("--reason", default="rescored from the command line",
                            help="recorded in the audit log")

    def handle(self, *args, challenge: str, phase: str, user: str | None = None,  # type: ignore[no-untyped-def]
               reason: str = "rescored from the command line", **options) -> None:
        found = Phase.objects.select_related("challenge").filter(challenge__slug=challenge, slug=phase).first()
        if found is None:
            raise CommandError(f"no phase {phase!r} in challenge {challenge!r}")
        try:
            count = phase_rescore(phase=found, by=acting_user(user, option="--user"), reason=reason)
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"Queued {count} submission{'' if count == 1 else 's'} of {found} for rescoring.")

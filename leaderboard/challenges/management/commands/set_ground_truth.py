"""`manage.py set_ground_truth --phase CHALLENGE/PHASE BUNDLE [--as USERNAME]`: score a phase with another
ground-truth bundle (a version, a name or #id) and rescore what that makes stale (submissions.rescoring)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from leaderboard.challenges.models import Phase
from leaderboard.challenges.selectors import bundle_find
from leaderboard.errors import ApplicationError
from leaderboard.submissions.rescoring import phase_set_ground_truth

from leaderboard.commandkit import acting_user


class Command(BaseCommand):
    help = "Switch a phase to another ground-truth bundle and rescore its submissions against it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("bundle", help="the bundle: its version (or 8+ characters of it), its name, or #id")
        parser.add_argument("--phase", required=True, metavar="CHALLENGE/PHASE", help="e.g. egomask/test")
        parser.add_argument("--as", dest="username", metavar="USERNAME",
                            help="who acts (default: the only superuser)")

    def handle(self, *args: object, bundle: str, phase: str, username: str | None, **options: object) -> None:
        challenge_slug, _, phase_slug = phase.partition("/")
        if not phase_slug:
            raise CommandError(f"--phase takes CHALLENGE/PHASE (e.g. egomask/test), not {phase!r}.")
        target = Phase.objects.select_related("challenge", "ground_truth").filter(
            challenge__slug=challenge_slug, slug=phase_slug).first()
        if target is None:
            raise CommandError(f"There is no phase {phase_slug!r} in a challenge {challenge_slug!r}.")
        actor = acting_user(username)
        found, why = bundle_find(challenge=target.challenge, ref=bundle)
        if found is None:
            raise CommandError(why)
        try:
            switch = phase_set_ground_truth(phase=target, bundle=found, by=actor)
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        if not switch.changed:
            self.stdout.write(f"{target} already scores with {found.name!r} ({found.version[:12]}): no changes.")
            return
        self.stdout.write(f"{target} now scores with {found.name!r} ({found.version[:12]}); "
                          f"{switch.rescored} submission(s) queued for rescoring. The boards keep their scores "
                          "until the new ones are in.")

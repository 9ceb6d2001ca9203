"""`manage.py announce --challenge SLUG --subject ... --body-file FILE [--as USERNAME] [--dry-run]`: mail an
announcement to every member of every team of a challenge (those who opted out excepted).

It acts as --as USERNAME (who must be an organizer of the challenge allowed to moderate it), else as the
only superuser. --dry-run says who would get it and sends nothing (nothing is saved either).
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from leaderboard.commandkit import acting_user
from leaderboard.challenges.models import Challenge
from leaderboard.challenges.permissions import Can, organizer_can
from leaderboard.errors import ApplicationError
from leaderboard.notifications import selectors, services


class Command(BaseCommand):
    help = "Mail an announcement (Markdown) to the members of every team of a challenge."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--challenge", required=True, help="the challenge's slug")
        parser.add_argument("--subject", required=True, help="the mail's subject (one line)")
        parser.add_argument("--body-file", required=True, type=Path, help="the text, in Markdown ('-': stdin)")
        parser.add_argument("--as", dest="as_user", metavar="USERNAME",
                            help="the organizer who sends it (default: the only superuser)")
        parser.add_argument("--dry-run", action="store_true", help="say who would get it; send nothing")

    def handle(self, *args: object, challenge: str, subject: str, body_file: Path, as_user: str | None,
               dry_run: bool, **rest: object) -> None:
        found = Challenge.objects.filter(slug=challenge).first()
        if found is None:
            raise CommandError(f"There is no challenge {challenge!r}.")
        body = self._read(body_file)
        user = acting_user(as_user)
        audience = selectors.announcement_audience(challenge=found)
        if dry_run:
            if not organizer_can(user, found, Can.MODERATE):
                raise CommandError(f"{user.get_username()} may not send announcements to {found.title!r}.")
            self.stdout.write(f"Would send {subject!r} to {len(audience.recipients)} members of {found.title!r} "
                              f"({audience.opted_out} opted out):")
            for member in audience.recipients:
                self.stdout.write(f"  {member.get_username()} <{member.email}>")
            return
        try:
            announcement = services.announcement_create(challenge=found, user=user, subject=subject, body=body)
            announcement = services.announcement_send(announcement=announcement, user=user)
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(self.style.SUCCESS(
            f"Announcement #{announcement.pk} queued for {announcement.recipients} members "
            f"({announcement.opted_out} opted out); a worker on the maintenance queue sends it."))

    def _read(self, path: Path) -> str:
        import sys

        try:
            text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise CommandError(f"--body-file {path}: no such file.") from None
        except UnicodeDecodeError:
            raise CommandError(f"--body-file {path}: not UTF-8 text.") from None
        except OSError as exc:
            raise CommandError(f"--body-file {path}: {exc.strerror}.") from None
        if not text.strip():
            raise CommandError(f"--body-file {path} is empty.")
        return text

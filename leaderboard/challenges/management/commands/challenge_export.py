"""`manage.py challenge_export SLUG [--out FILE] [--as USERNAME]`: a challenge as its YAML file (the inverse of
challenge_apply: applying the export changes nothing)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from leaderboard.challenges.challengefile.export import challenge_export
from leaderboard.challenges.models import Challenge
from leaderboard.challenges.permissions import Can, organizer_can

from leaderboard.commandkit import acting_user


class Command(BaseCommand):
    help = "Write a challenge, its hosts and phases as a challenge YAML file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="the challenge's slug")
        parser.add_argument("--out", type=Path, help="the file to write (default: standard output)")
        parser.add_argument("--as", dest="username", metavar="USERNAME",
                            help="who exports it (needs to see the challenge's configuration; default: the only "
                            "superuser)")

    def handle(self, *args: object, slug: str, out: Path | None, username: str | None, **options: object) -> None:
        challenge = Challenge.objects.filter(slug=slug).first()
        if challenge is None:
            raise CommandError(f"There is no challenge {slug!r}.")
        if not organizer_can(acting_user(username), challenge, Can.VIEW):
            raise CommandError(f"You may not see the configuration of {slug!r}.")
        text = challenge_export(challenge=challenge)
        if out is None:
            self.stdout.write(text, ending="")
            return
        try:
            out.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"Cannot write {out}: {exc.strerror}.") from None
        self.stdout.write(f"Wrote {challenge.slug} to {out}.")

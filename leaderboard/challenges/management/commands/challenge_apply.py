"""`manage.py challenge_apply FILE [--dry-run] [--as USERNAME]`: check a challenge file, print its diff against
the database and apply it in one transaction (challengefile/apply.py; the keys: docs/challenge-yaml.md)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from leaderboard.challenges.challengefile.apply import challenge_apply
from leaderboard.challenges.challengefile.yamlfile import SpecErrors
from leaderboard.errors import ApplicationError

from leaderboard.commandkit import acting_user


class Command(BaseCommand):
    help = "Check a challenge YAML file, show what it changes, and apply it (idempotent, one transaction)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="the challenge file (YAML)")
        parser.add_argument("--dry-run", action="store_true", help="check and show the diff; write nothing")
        parser.add_argument("--as", dest="username", metavar="USERNAME",
                            help="who applies it (their rights are checked; default: the only superuser)")

    def handle(self, *args: object, file: Path, dry_run: bool, username: str | None, **options: object) -> None:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"Cannot read {file}: {getattr(exc, 'strerror', None) or exc}.") from None
        actor = acting_user(username)
        try:
            plan = challenge_apply(text=text, base_dir=file.resolve().parent, by=actor, dry_run=dry_run)
        except SpecErrors as exc:
            problems = "\n".join(f"  {file}: {error}" for error in exc.errors)
            raise CommandError(f"{file} has {len(exc.errors)} problem(s); nothing was written.\n{problems}") from None
        except ApplicationError as exc:
            raise CommandError(f"{file}: {exc.message} Nothing was written.") from None
        self.stdout.write(plan.text())

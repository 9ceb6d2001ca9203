"""`manage.py import_reported --phase P [FILE]`: the numbers a paper reports, as reported rows of a
phase's boards (the EgoMask paper's table when no file is given). Idempotent."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from leaderboard.challenges.permissions import Can, organizer_can
from leaderboard.commandkit import acting_user
from leaderboard.errors import ApplicationError

from ...reported import PAPER_FILE, reported_import, reported_parse
from ._phase_arg import find_phase


class Command(BaseCommand):
    help = "Import reported (paper) results for a phase from a JSON file (default: the EgoMask paper's table)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", nargs="?", default=str(PAPER_FILE), help="the JSON file (see reported.py)")
        parser.add_argument("--phase", required=True, help="the phase's slug")
        parser.add_argument("--challenge", help="the challenge's slug, when several have that phase")
        parser.add_argument("--as", dest="username", metavar="USERNAME",
                            help="who acts: an organizer of the challenge (default: the only superuser)")

    def handle(self, *args: object, file: str, phase: str, challenge: str | None, username: str | None,
               **rest: object) -> None:
        target = find_phase(phase, challenge)
        actor = acting_user(username)
        if not organizer_can(actor, target.challenge_id, Can.CONFIGURE):
            raise CommandError(f"{actor.get_username()} may not change the reported rows of {target}: that needs the "
                               "right to configure its challenge.")
        try:
            text = Path(file).read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}.") from None
        try:
            counts = reported_import(phase=target, results=reported_parse(text))
        except ApplicationError as exc:
            raise CommandError(f"{file}: {exc.message}") from None
        self.stdout.write(f"Reported results for {target}: {counts['created']} new, {counts['updated']} updated, "
                          f"{counts['unchanged']} unchanged.")

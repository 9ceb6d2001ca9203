"""Write every export of a phase (exports.py) into a folder, as the organizer --as (default: the only superuser)."""

from __future__ import annotations

import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from leaderboard.challenges.models import Phase
from leaderboard.commandkit import acting_user
from leaderboard.submissions.exports import EXPORTS, export_allowed, phase_export


def _phase(spec: str) -> Phase:
    challenge, slash, phase = spec.partition("/")
    if not slash or not challenge or not phase:
        raise CommandError(f"--phase {spec!r}: write it as CHALLENGE/PHASE (the slugs), e.g. egomask/test.")
    found = Phase.objects.select_related("challenge").filter(challenge__slug=challenge, slug=phase).first()
    if found is None:
        raise CommandError(f"--phase {spec!r}: there is no phase {phase!r} in a challenge {challenge!r}.")
    return found


class Command(BaseCommand):
    help = ("Write a phase's exports (submissions.csv/.json, boards.csv/.json, results.zip) into a folder, with the "
            "rights of an organizer of its challenge.")

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--phase", required=True, metavar="CHALLENGE/PHASE", help="the challenge and phase slugs")
        parser.add_argument("--out", required=True, metavar="DIR", help="the folder to write to (made if missing)")
        parser.add_argument("--as", dest="username", metavar="USERNAME",
                            help="the organizer whose rights apply (default: the only superuser)")

    def handle(self, *args: object, phase: str, out: str, username: str | None, **options: object) -> None:
        found = _phase(phase)
        user = acting_user(username)
        if not export_allowed(phase=found, by=user):  # asked again by phase_export; here before anything is made
            raise CommandError(f"{user.get_username()!r} does not organize the challenge {found.challenge.slug!r}: "
                               "name an organizer with --as.")
        folder = Path(out)
        if folder.exists() and not folder.is_dir():
            raise CommandError(f"--out {out!r} is a file, not a folder.")
        folder.mkdir(parents=True, exist_ok=True)
        for name in EXPORTS:
            export = phase_export(phase=found, name=name, by=user)
            target = folder / export.filename
            partial = target.with_name(target.name + ".part")
            size = 0
            with partial.open("wb") as handle:
                for chunk in export.chunks:
                    handle.write(chunk)
                    size += len(chunk)
            os.replace(partial, target)  # a reader never sees half a file
            self.stdout.write(f"{target} ({size} bytes)")

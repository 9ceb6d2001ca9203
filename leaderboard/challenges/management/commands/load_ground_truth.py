"""Store a ground-truth zip for a challenge, check it now, and optionally attach it to a phase (through
phase_set_ground_truth, which rescores what the new version makes stale), as an organizer of the challenge."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from leaderboard.challenges.models import Challenge, GroundTruthBundle, Phase
from leaderboard.challenges.permissions import Can, organizer_can
from leaderboard.commandkit import acting_user
from leaderboard.errors import ApplicationError
from leaderboard.submissions.rescoring import phase_set_ground_truth
from leaderboard.challenges.services import ground_truth_check, ground_truth_create


class Command(BaseCommand):
    help = "Upload a ground-truth zip (EgoMask layout) to private storage, check it, optionally attach it."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("challenge", help="challenge slug")
        parser.add_argument("archive", metavar="zip", type=Path, help="a zip of the published EgoMask layout")
        parser.add_argument("--name", required=True, help="a name organizers recognise, e.g. 'test v2'")
        parser.add_argument("--attach-phase", metavar="PHASE", help="phase slug that scores against it from now on "
                            "(its submissions are rescored against it, as set_ground_truth does)")
        parser.add_argument("--as", dest="username", metavar="USERNAME",
                            help="who acts: an organizer of the challenge (default: the only superuser)")

    def handle(self, *args, challenge: str, archive: Path, name: str, attach_phase: str | None,
               username: str | None, **options) -> None:  # type: ignore[no-untyped-def]
        found = Challenge.objects.filter(slug=challenge).first()
        if found is None:
            raise CommandError(f"no challenge {challenge!r}")
        actor = acting_user(username)
        if not organizer_can(actor, found, Can.CONFIGURE):
            raise CommandError(f"{actor.get_username()} may not add ground truth to {challenge!r}: that needs the "
                               "right to configure the challenge.")
        phase = None
        if attach_phase:
            phase = Phase.objects.filter(challenge=found, slug=attach_phase).first()
            if phase is None:
                raise CommandError(f"no phase {attach_phase!r} in challenge {challenge!r}")
        if not archive.is_file():
            raise CommandError(f"{archive} is not a file")
        with archive.open("rb") as handle:
            bundle = ground_truth_create(challenge=found, name=name, file=handle, filename=archive.name)
        bundle = ground_truth_check(bundle_id=bundle.pk)
        if bundle.status != GroundTruthBundle.Status.READY:
            raise CommandError(f"bundle #{bundle.pk} {name!r} is invalid: {bundle.message}")
        counts = ", ".join(f"{split}: {c['videos']} videos / {c['expressions']} expressions"
                           for split, c in bundle.summary.items())
        self.stdout.write(f"Bundle #{bundle.pk} {name!r} is ready: version {bundle.version[:12]} ({counts}).")
        if phase is not None:
            try:
                switch = phase_set_ground_truth(phase=phase, bundle=bundle, by=actor)
            except ApplicationError as exc:
                raise CommandError(exc.message) from None
            self.stdout.write(f"Attached to {phase}: {switch.rescored} submission(s) queued for rescoring; the boards "
                              "keep their scores until the new ones are in.")

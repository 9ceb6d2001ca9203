"""Store a ground-truth zip for a challenge, check it now, and optionally attach it to a phase."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from leaderboard.challenges.models import Challenge, GroundTruthBundle, Phase
from leaderboard.challenges.services import ground_truth_check, ground_truth_create


class Command(BaseCommand):
    help = "Upload a ground-truth zip (EgoMask layout) to private storage, check it, optionally attach it."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("challenge", help="challenge slug")
        parser.add_argument("archive", metavar="zip", type=Path, help="a zip of the published EgoMask layout")
        parser.add_argument("--name", required=True, help="a name organizers recognise, e.g. 'test v2'")
        parser.add_argument("--attach-phase", metavar="PHASE", help="phase slug that scores against it from now on")

    def handle(self, *args, challenge: str, archive: Path, name: str, attach_phase: str | None,
               **options) -> None:  # type: ignore[no-untyped-def]
        found = Challenge.objects.filter(slug=challenge).first()
        if found is None:
            raise CommandError(f"no challenge {challenge!r}")
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
            # No service attaches a bundle to a phase; this is the one field the admin would set.
            phase.ground_truth = bundle
            phase.save(update_fields=["ground_truth"])
            self.stdout.write(f"Attached to {phase}. Existing scores keep their old version until you run "
                              f"`manage.py rescore_phase {challenge} {phase.slug}`.")

"""`manage.py run_baseline NAME --phase P`: queue a reference runner on a phase's public inputs.

The run's shards go to the workers (the `gpu` queue for a GPU run, `scoring` for a CPU one); when all
are done a worker assembles them and submits a baseline entry, scored like any submission.
`--here` runs it all in this process instead (no worker: the demo's seed, a quick check).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from leaderboard.errors import ApplicationError
from scoring.runners import RUNNERS

from ...models import BaselineRun
from ...services import baseline_run_create, baseline_run_queue, baseline_run_resend
from ...work import baseline_run_here
from leaderboard.commandkit import acting_user

from ._phase_arg import find_phase


def _options(pairs: list[str]) -> dict[str, str]:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CommandError(f"--option takes key=value, not {pair!r}.")
        options[key] = value
    return options


class Command(BaseCommand):
    help = "Queue a reference runner (a baseline) on a phase: one task per shard, then a baseline submission."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", nargs="?", choices=sorted(RUNNERS), help="the runner (egomask run-baseline --list)")
        parser.add_argument("--phase", help="the phase's slug")
        parser.add_argument("--challenge", help="the challenge's slug, when several have that phase")
        parser.add_argument("--shards", type=int, default=1, help="tasks to split the run into (by video)")
        parser.add_argument("--weights", help="the weights folder on the workers (BASELINE_WEIGHTS_DIR/NAME)")
        parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                            help="a runner option (repeatable)")
        parser.add_argument("--device", help="cuda or cpu (the runner's first device by default)")
        parser.add_argument("--user", help="the organizer who owns the run and its submission")
        parser.add_argument("--here", action="store_true", help="run the shards and the assembly in this process")
        parser.add_argument("--resume", type=int, metavar="RUN", help="send an unfinished run's tasks again")

    def handle(self, *args: object, name: str | None, phase: str | None, challenge: str | None, shards: int,
               weights: str | None, option: list[str], device: str | None, user: str | None, here: bool,
               resume: int | None, **rest: object) -> None:
        organizer = acting_user(user, option="--user")
        try:
            if resume is not None:
                run = BaselineRun.objects.filter(pk=resume).first()
                if run is None:
                    raise CommandError(f"There is no baseline run #{resume}.")
                baseline_run_resend(run=run, user=organizer)
                self.stdout.write(f"Run #{run.pk} ({run.runner}) sent again: {run.shards} shard task(s).")
                return
            if not name or not phase:
                raise CommandError("Name the runner and the phase: run_baseline NAME --phase P.")
            fields = dict(phase=find_phase(phase, challenge), user=organizer, runner=name, shards=shards,
                          weights=weights, options=_options(option), device=device)
            if here:
                run = baseline_run_create(**fields)  # type: ignore[arg-type]
                run = baseline_run_here(run_id=run.pk)
                self.stdout.write(f"Run #{run.pk} ({run.runner} {run.runner_version}): {run.status}"
                                  + (f": {run.error}" if run.error else
                                     f", submission #{run.submission_id}"))
                if run.status == BaselineRun.Status.FAILED:
                    raise CommandError(run.error)
                return
            run = baseline_run_queue(**fields)
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        queue = "gpu" if run.device.startswith("cuda") else "scoring"
        self.stdout.write(f"Queued run #{run.pk}: {run.runner} {run.runner_version} on {run.phase}, "
                          f"{run.shards} shard(s) on the {queue} queue, device {run.device}.")

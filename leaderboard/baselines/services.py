"""Writes for baseline runs on the web side and at the end of a run: queue a run (organizers only),
send it again, assemble its shards into one zip and submit that as a baseline entry, and follow its
submission's scoring. The shards' own work is in work.py; reported rows in reported.py.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from leaderboard.challenges.models import GroundTruthBundle, Phase
from leaderboard.errors import ApplicationError, Conflict
from leaderboard.submissions import admission
from leaderboard.submissions.models import Submission
from leaderboard.submissions.services import submission_create
from scoring.runners import Runner, RunnerError, get_runner, merge

from . import dispatch
from .models import BaselineRun, ShardRun

log = logging.getLogger(__name__)
Status = BaselineRun.Status
MAX_SHARDS = 256


def run_folder(run: BaselineRun) -> Path:
    """Where a run's shards write (a volume every shard worker and the assembler share)."""
    return Path(settings.BASELINE_WORK_DIR) / str(run.pk)


def shard_folder(run: BaselineRun, index: int) -> Path:
    return run_folder(run) / f"shard-{index}"


def _runner(name: str) -> Runner:
    try:
        return get_runner(name)
    except RunnerError as exc:
        raise ApplicationError(str(exc)) from None


def _device(runner: Runner, device: str | None) -> str:
    """The device asked for, else the runner's first (a GPU for the model runners)."""
    chosen = device or runner.devices[0]
    if chosen not in runner.devices:
        raise ApplicationError(f"{runner.name} runs on {' or '.join(runner.devices)}, not {chosen!r}.")
    return chosen


def _weights(runner: Runner, weights: str | os.PathLike[str] | None) -> str:
    """The weights folder the workers load (BASELINE_WEIGHTS_DIR/<runner> unless given); "" when weight-free."""
    if not runner.needs_weights:
        if weights:
            raise ApplicationError(f"{runner.name} uses no weights; leave out --weights.")
        return ""
    return str(Path(weights) if weights else Path(settings.BASELINE_WEIGHTS_DIR) / runner.name)


def _ready_inputs(phase: Phase) -> GroundTruthBundle:
    bundle = phase.ground_truth
    if bundle is None or bundle.status != GroundTruthBundle.Status.READY or not bundle.public_inputs:
        raise ApplicationError(f"The phase {phase.name!r} has no checked ground truth, so there are no public "
                               "inputs (expressions, frames) to run a baseline on.")
    return bundle


def baseline_run_create(*, phase: Phase, user: AbstractBaseUser, runner: str, shards: int = 1,
                        weights: str | os.PathLike[str] | None = None, options: Mapping[str, str] | None = None,
                        device: str | None = None) -> BaselineRun:
    """Record a run and its shards (nothing is sent: see baseline_run_queue). Organizers only."""
    admission.submission_admit(phase=phase, user=user, is_baseline=True)  # the same rule as a baseline upload
    found = _runner(runner)
    options = {str(k): str(v) for k, v in (options or {}).items()}
    unknown = sorted(set(options) - set(found.options))
    if unknown:
        raise ApplicationError(f"{found.name} has no option {unknown[0]!r} (its options: "
                               f"{', '.join(found.options) or 'none'}).")
    if not 1 <= shards <= MAX_SHARDS:
        raise ApplicationError(f"A run has between 1 and {MAX_SHARDS} shards, not {shards}.")
    bundle = _ready_inputs(phase)
    with transaction.atomic():
        run = BaselineRun.objects.create(
            phase=phase, runner=found.name, runner_version=found.version, options=options,
            device=_device(found, device), weights_path=_weights(found, weights), shards=shards, user=user,
            gt_version=bundle.version)
        ShardRun.objects.bulk_create([ShardRun(run=run, index=index) for index in range(shards)])
    return run


def baseline_run_queue(**fields: object) -> BaselineRun:
    """Record a run (baseline_run_create's arguments) and send its shards and assembly as a chord."""
    with transaction.atomic():
        run = baseline_run_create(**fields)  # type: ignore[arg-type]
        dispatch.send_run_on_commit(run_id=run.pk, shards=run.shards, device=run.device)
    return run


def baseline_run_resend(*, run: BaselineRun, user: AbstractBaseUser) -> BaselineRun:
    """Send an unfinished run's chord again (lost messages, a broker outage): finished shards do
    nothing, started ones resume from their folders."""
    admission.submission_admit(phase=run.phase, user=user, is_baseline=True)
    if run.status not in BaselineRun.ACTIVE:
        raise Conflict(f"Run #{run.pk} is {run.status}; queue a new run instead.")
    dispatch.send_run_on_commit(run_id=run.pk, shards=run.shards, device=run.device)
    return run


def baseline_run_fail(*, run_id: int, error: str) -> bool:
    """End a run that cannot finish, with why (once: the first failure's sentence stays)."""
    return bool(BaselineRun.objects.filter(pk=run_id, status__in=[*BaselineRun.ACTIVE, Status.SUBMITTED]).update(
        status=Status.FAILED, error=error, finished_at=timezone.now()))


def _description(run: BaselineRun, runner: Runner) -> str:
    parts = [f"Produced on this server by the reference runner {run.runner} {run.runner_version} "
             f"(baseline run #{run.pk}, {run.shards} shard{'s' if run.shards != 1 else ''}, {run.device}): "
             f"{runner.description}."]
    if run.options:
        parts.append("Options: " + ", ".join(f"{k}={v}" for k, v in sorted(run.options.items())) + ".")
    if run.weights_path:
        # The folder's name, not the worker's path to it: the description is public.
        parts.append(f"Weights: {Path(run.weights_path).name} (config sha256 {run.weights_sha256[:16] or 'unknown'}).")
    return " ".join(parts)


def baseline_run_assemble(*, run_id: int) -> str:
    """Zip the shards of a run whose shards all finished and submit the zip as a baseline entry.

    "submitted" (done now), "waiting" (a shard is not finished: try again later), "failed" (a
    shard failed, or the submission was refused) or "done" (nothing to do: another call did it).
    """
    run = BaselineRun.objects.select_related("phase").get(pk=run_id)
    if run.status not in BaselineRun.ACTIVE:
        return "done"
    shards = list(run.shard_runs.order_by("index"))
    failed = [s for s in shards if s.status == ShardRun.Status.FAILED]
    if failed:
        baseline_run_fail(run_id=run.pk, error=failed[0].error or f"Shard {failed[0].index} failed.")
        return "failed"
    if any(s.status != ShardRun.Status.FINISHED for s in shards):
        return "waiting"
    BaselineRun.objects.filter(pk=run.pk, status__in=BaselineRun.ACTIVE).update(status=Status.ASSEMBLING)
    root = run_folder(run)
    # A zip of this call's own: two assemblies of one run (a chord sent again) never write the same
    # file, and only the first to lock the run below submits.
    archive = root / f"run-{run.pk}-{uuid.uuid4().hex[:12]}.zip"
    try:
        merge([shard_folder(run, s.index) for s in shards], archive)
    except RunnerError as exc:
        baseline_run_fail(run_id=run.pk, error=f"The shards could not be assembled: {exc}")
        return "failed"
    runner = _runner(run.runner)
    try:
        with transaction.atomic():
            locked = BaselineRun.objects.select_for_update().get(pk=run.pk)
            if locked.status != Status.ASSEMBLING or locked.submission_id is not None:
                return "done"  # another assembler got there first
            if locked.user is None:
                raise ApplicationError("The organizer who queued this run no longer exists; queue it again.")
            with archive.open("rb") as handle:
                submission = submission_create(
                    phase=run.phase, user=locked.user, file=handle, method_name=run.method_name,
                    method_description=_description(locked, runner), is_baseline=True)
            locked.submission, locked.status = submission, Status.SUBMITTED
            locked.save(update_fields=["submission", "status"])
            # The zip is in private storage now; the shards' folders have served their purpose.
            transaction.on_commit(lambda: shutil.rmtree(root, ignore_errors=True))
    except ApplicationError as exc:
        baseline_run_fail(run_id=run.pk, error=f"The assembled submission was refused: {exc.message}")
        return "failed"
    finally:
        archive.unlink(missing_ok=True)  # stored as the submission's file, or not wanted
    return "submitted"


def baseline_run_follow_scoring(*, submission: Submission) -> None:
    """A run's submission was scored: the run is finished (or failed with the scorer's words)."""
    # The submission's latest outcome: a rescore that succeeds after a failure finishes the run,
    # and one that fails after a success fails it.
    runs = BaselineRun.objects.filter(submission=submission,
                                      status__in=[Status.SUBMITTED, Status.FINISHED, Status.FAILED])
    if submission.status == Submission.Status.FINISHED:
        runs.update(status=Status.FINISHED, finished_at=timezone.now(), error="")
    elif submission.status in (Submission.Status.FAILED, Submission.Status.CANCELLED):
        reason = submission.failure_message or f"it was {submission.status}"
        runs.update(status=Status.FAILED, finished_at=timezone.now(), error=f"Its submission was not scored: {reason}")

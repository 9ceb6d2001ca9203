"""The worker side of a baseline run: claim a shard under a lease, run the reference runner on the
phase's public inputs, and write its progress as it goes.

A shard is claimed with a conditional UPDATE: it must be queued, or running under a lease that has
expired (its worker was killed or lost). The worker renews the lease with every progress write;
a redelivered task that finds a live lease is told "busy" and tries again later, so one shard never
runs twice at once, and a task whose lease was taken over stops. A claimed shard resumes: the
runner's Writer skips every expression already in the shard's folder.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from scoring.runners import Progress, RunnerError, get_runner, load_jobs, run

from .models import BaselineRun, ShardRun
from .services import baseline_run_fail, run_folder, shard_folder

Status = ShardRun.Status
CONFIG_SUFFIXES = (".json", ".txt", ".yaml", ".yml", ".model")  # what a weights folder is named by, not its tensors


class LeaseLost(Exception):
    """Another worker holds this shard now (ours expired): stop without writing anything more."""


class RunStopped(Exception):
    """The run failed elsewhere (another shard): stop this shard."""


def meta_file(run: BaselineRun) -> Path:
    """The run's public inputs as a meta_expressions.json (no mask: a runner never sees ground truth)."""
    bundle = run.phase.ground_truth
    if bundle is None or bundle.version != run.gt_version or not bundle.public_inputs:
        raise RunnerError(f"the phase's ground truth changed since run #{run.pk} was queued (it ran on "
                          f"{run.gt_version[:12]}); queue a new run")
    videos = {name: {"subset": video["split"], "frames": video["frames"], "expressions": video["expressions"]}
              for name, video in bundle.public_inputs["videos"].items()}
    target = run_folder(run) / "meta_expressions.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    partial.write_text(json.dumps({"videos": videos}), encoding="utf-8")
    os.replace(partial, target)  # every shard writes the same bytes; a reader never sees half a file
    return target


def weights_fingerprint(folder: Path) -> str:
    """sha256 over the names and bytes of a weights folder's config files (not its tensors: quick, and
    what tells two downloads of different models or revisions apart)."""
    if not folder.is_dir():
        raise RunnerError(f"the weights folder {folder} does not exist on this worker (BASELINE_WEIGHTS_DIR)")
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in CONFIG_SUFFIXES):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _claim(shard: ShardRun, token: str, hostname: str, now: dt.datetime) -> bool:
    free = Q(status=Status.QUEUED) | Q(status=Status.RUNNING, lease_until__lt=now) | Q(
        status=Status.RUNNING, lease_until__isnull=True)
    return ShardRun.objects.filter(free, pk=shard.pk).update(
        status=Status.RUNNING, lease=token, lease_until=now + dt.timedelta(seconds=settings.BASELINE_LEASE_SECONDS),
        claims=F("claims") + 1, hostname=hostname[:255], error="", updated_at=now,
        started_at=shard.started_at or now) == 1


def _mine(shard_id: int, token: str) -> Q:
    return Q(pk=shard_id, lease=token, status=Status.RUNNING)


def _progress_writer(shard_id: int, run_id: int, token: str) -> Callable[[Progress], None]:
    """The runner's callback: progress and the lease renewed at most every BASELINE_PROGRESS_EVERY seconds."""
    last = [0.0]

    def write(progress: Progress) -> None:
        tick = time.monotonic()
        finished = progress.done_expressions == progress.expressions
        if tick - last[0] < settings.BASELINE_PROGRESS_EVERY and not finished:
            return
        last[0] = tick
        now = timezone.now()
        updated = ShardRun.objects.filter(_mine(shard_id, token)).update(
            expressions_done=progress.done_expressions, expressions_total=progress.expressions,
            expressions_skipped=progress.skipped_expressions, frames_done=progress.done_frames,
            frames_total=progress.frames, frames_per_second=progress.frames_per_second,
            model_seconds=progress.seconds, updated_at=now,
            lease_until=now + dt.timedelta(seconds=settings.BASELINE_LEASE_SECONDS))
        if not updated:
            raise LeaseLost
        if BaselineRun.objects.filter(pk=run_id, status=BaselineRun.Status.FAILED).exists():
            raise RunStopped

    return write


def _record_weights(run: BaselineRun) -> None:
    """The first shard records the weights' fingerprint; a worker with other weights fails its shard."""
    if not run.weights_path:
        return
    fingerprint = weights_fingerprint(Path(run.weights_path))
    BaselineRun.objects.filter(pk=run.pk, weights_sha256="").update(weights_sha256=fingerprint)
    recorded = BaselineRun.objects.values_list("weights_sha256", flat=True).get(pk=run.pk)
    if recorded != fingerprint:
        raise RunnerError(f"the weights in {run.weights_path} on this worker differ from those the run's other "
                          f"shards used (config sha256 {fingerprint[:12]}, not {recorded[:12]})")


def baseline_shard_run(*, run_id: int, index: int, hostname: str = "") -> str:
    """Run shard `index` of a run, or resume it. Returns what happened:

    "finished"; "failed" (the runner's sentence is on the shard and the run); "busy" (another worker
    holds a live lease: try again later); "done" (finished or failed before: nothing to do);
    "stopped" (the run failed elsewhere, or another worker took the shard over).
    Anything else that goes wrong propagates with the shard released, for the task to retry.
    """
    shard = ShardRun.objects.select_related("run__phase__ground_truth").get(run_id=run_id, index=index)
    run_row = shard.run
    if shard.status in (Status.FINISHED, Status.FAILED):
        return "done"
    if run_row.status not in BaselineRun.ACTIVE:
        ShardRun.objects.filter(pk=shard.pk, status__in=[Status.QUEUED, Status.RUNNING]).update(
            status=Status.FAILED, error=f"the run is {run_row.status}")
        return "stopped"
    token = uuid.uuid4().hex
    now = timezone.now()
    if not _claim(shard, token, hostname, now):
        return "busy" if ShardRun.objects.filter(pk=shard.pk, status=Status.RUNNING).exists() else "done"
    BaselineRun.objects.filter(pk=run_id, status=BaselineRun.Status.QUEUED).update(
        status=BaselineRun.Status.RUNNING, started_at=now)
    started = time.monotonic()
    try:
        _record_weights(run_row)
        jobs = load_jobs(meta_file(run_row))
        report = run(get_runner(run_row.runner), jobs=jobs, frames=settings.BASELINE_FRAMES_DIR,
                     out=shard_folder(run_row, index), device=run_row.device,
                     weights=run_row.weights_path or None, options=run_row.options,
                     shard_of=(index, run_row.shards), progress=_progress_writer(shard.pk, run_id, token))
    except RunnerError as exc:
        message = f"Shard {index} of {run_row.shards} on {hostname or 'a worker'}: {exc}"
        ShardRun.objects.filter(_mine(shard.pk, token)).update(
            status=Status.FAILED, error=message, finished_at=timezone.now(), lease_until=None,
            seconds=time.monotonic() - started)
        baseline_run_fail(run_id=run_id, error=message)
        return "failed"
    except (LeaseLost, RunStopped):
        return "stopped"
    except BaseException:
        # Ours to retry (a bug, the database, a time limit, a signal): free the shard at once, so the
        # retry, here or on another worker, need not wait for the lease to expire.
        ShardRun.objects.filter(_mine(shard.pk, token)).update(lease_until=None, seconds=time.monotonic() - started)
        raise
    ShardRun.objects.filter(_mine(shard.pk, token)).update(
        status=Status.FINISHED, finished_at=timezone.now(), lease_until=None, updated_at=timezone.now(),
        expressions_done=report.expressions, expressions_total=report.expressions,
        expressions_skipped=report.skipped_expressions, frames_done=report.frames, frames_total=report.frames,
        frames_per_second=report.frames_per_second, model_seconds=report.model_seconds, seconds=report.seconds)
    return "finished"


def baseline_shard_fail(*, run_id: int, index: int, error: str) -> None:
    """End a shard the task gave up on (retries spent), and its run."""
    ShardRun.objects.filter(run_id=run_id, index=index, status__in=[Status.QUEUED, Status.RUNNING]).update(
        status=Status.FAILED, error=error, finished_at=timezone.now(), lease_until=None)
    baseline_run_fail(run_id=run_id, error=error)


def baseline_run_here(*, run_id: int) -> BaselineRun:
    """Run every shard of a run, then assemble it, in this process (no worker: the demo's seed, tests,
    `run_baseline --here`). The submission is queued for scoring like any other."""
    from .services import baseline_run_assemble

    for index in range(BaselineRun.objects.values_list("shards", flat=True).get(pk=run_id)):
        if baseline_shard_run(run_id=run_id, index=index, hostname="here") in ("failed", "stopped"):
            break
    baseline_run_assemble(run_id=run_id)
    return BaselineRun.objects.get(pk=run_id)

"""Celery tasks for baseline runs: thin. A shard task runs one shard (two names, one per queue: the
routes send GPU runs to `gpu` and CPU runs to `scoring`); the chord's callback assembles the run.
Retries and failure handling live here; the work is in work.py and services.py.

acks_late + reject_on_worker_lost: a shard whose worker is killed is redelivered and resumes from
its folder (the lease it held was released, or expires).
"""

from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from . import dispatch, services, work

log = logging.getLogger(__name__)
MAX_RETRIES = 3
BUSY_RETRIES = 500  # a live lease elsewhere: wait for it, one lease at a time
SLICES = 50  # a shard longer than its time limit goes on in this many tasks at most
ASSEMBLY_WAIT = 15  # seconds between looks at the shards while one is still running elsewhere
ASSEMBLY_WAITS = 2000


def _run_shard(task, run_id: int, index: int) -> str:  # type: ignore[no-untyped-def]
    try:
        outcome = work.baseline_shard_run(run_id=run_id, index=index, hostname=task.request.hostname or "")
    except SoftTimeLimitExceeded:
        # Not a failure: the shard continues in a new task, from what it wrote (the lease is free).
        if task.request.retries < SLICES:
            raise task.retry(countdown=0, max_retries=SLICES) from None
        work.baseline_shard_fail(run_id=run_id, index=index, error=f"Shard {index} ran longer than "
                                 f"{SLICES} time limits of {settings.BASELINE_SHARD_SOFT_TIME_LIMIT} seconds.")
        return "failed"
    except Exception as exc:
        log.exception("baseline run %s shard %s failed", run_id, index)
        if task.request.retries < MAX_RETRIES:
            raise task.retry(exc=exc, countdown=15 * 2**task.request.retries) from None
        work.baseline_shard_fail(run_id=run_id, index=index,
                                 error=f"Shard {index} stopped on an internal error ({type(exc).__name__}: {exc}).")
        return "failed"
    if outcome == "busy" and task.request.retries < BUSY_RETRIES:
        # A duplicate delivery while the owner is alive, or a redelivery before the dead owner's
        # lease ran out: look again later (the owner may be gone). After that, end normally: the
        # live owner finishes the shard, and the assembly waits for it (a failed part would stop the chord).
        raise task.retry(countdown=max(10, settings.BASELINE_PROGRESS_EVERY * 2), max_retries=BUSY_RETRIES)
    return outcome


_SHARD_OPTIONS = dict(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=False,
                      soft_time_limit=settings.BASELINE_SHARD_SOFT_TIME_LIMIT,
                      time_limit=settings.BASELINE_SHARD_TIME_LIMIT)


@shared_task(name=dispatch.RUN_GPU_SHARD, **_SHARD_OPTIONS)
def run_gpu_shard(self, run_id: int, index: int) -> str:  # type: ignore[no-untyped-def]
    return _run_shard(self, run_id, index)


@shared_task(name=dispatch.RUN_CPU_SHARD, **_SHARD_OPTIONS)
def run_cpu_shard(self, run_id: int, index: int) -> str:  # type: ignore[no-untyped-def]
    return _run_shard(self, run_id, index)


@shared_task(bind=True, name=dispatch.ASSEMBLE_RUN, acks_late=True, reject_on_worker_lost=True,
             max_retries=ASSEMBLY_WAITS)
def assemble_run(self, run_id: int) -> str:  # type: ignore[no-untyped-def]
    try:
        outcome = services.baseline_run_assemble(run_id=run_id)
    except Exception as exc:
        log.exception("assembling baseline run %s failed", run_id)
        if self.request.retries < MAX_RETRIES:
            raise self.retry(exc=exc, countdown=15 * 2**self.request.retries) from None
        services.baseline_run_fail(run_id=run_id, error=f"Assembling the shards stopped on an internal error "
                                   f"({type(exc).__name__}: {exc}).")
        return "failed"
    if outcome == "waiting":
        # The chord fired early (a shard delivered twice counts twice) or a shard was re-sent: wait.
        if self.request.retries < ASSEMBLY_WAITS:
            raise self.retry(countdown=ASSEMBLY_WAIT)
        services.baseline_run_fail(run_id=run_id, error="The run's shards did not all finish; send it again "
                                   "with `run_baseline --resume`.")
        return "failed"
    return outcome

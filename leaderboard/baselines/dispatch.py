"""Send a run's Celery work by name once the transaction commits: one task per shard, on the `gpu`
queue when the run uses a GPU and on `scoring` when it runs on the CPU, in a chord whose callback
assembles the shards and submits the baseline.

By name, as submissions/queue.py does, so that services never import tasks.py.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from celery import chord, signature
from django.db import transaction

from leaderboard.celery import app as celery_app

log = logging.getLogger(__name__)

RUN_GPU_SHARD = "leaderboard.baselines.tasks.run_gpu_shard"
RUN_CPU_SHARD = "leaderboard.baselines.tasks.run_cpu_shard"
ASSEMBLE_RUN = "leaderboard.baselines.tasks.assemble_run"
TASK_NAMES = (RUN_GPU_SHARD, RUN_CPU_SHARD, ASSEMBLE_RUN)


def shard_task_for(device: str) -> str:
    """The shard task (hence the queue, by CELERY_TASK_ROUTES) for a run on `device`."""
    return RUN_GPU_SHARD if device.startswith("cuda") else RUN_CPU_SHARD


def run_chord(*, run_id: int, shards: int, device: str) -> Any:
    """The chord of a run: every shard, then the assembly."""
    name = shard_task_for(device)
    header = [signature(name, args=(run_id, index), app=celery_app) for index in range(shards)]
    return chord(header, signature(ASSEMBLE_RUN, args=(run_id,), app=celery_app, immutable=True), app=celery_app)


def send_run_on_commit(*, run_id: int, shards: int, device: str) -> None:
    """Queue a run's chord once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: _send(run_id, shards, device))


def _send(run_id: int, shards: int, device: str) -> None:
    try:
        run_chord(run_id=run_id, shards=shards, device=device).apply_async()
    except Exception:
        # The run is committed and stays `queued`; the organizer sees that and queues it again
        # (`run_baseline --resume RUN`), which resumes any shard that did start.
        log.exception("could not send baseline run %s; it stays queued", run_id)


def prepare_result_folder(settings: Any) -> None:
    """Make the folder of a `file://` result backend (kombu and Celery make none)."""
    backend = str(getattr(settings, "CELERY_RESULT_BACKEND", "") or "")
    if backend.startswith("file://"):
        Path(backend[len("file://"):]).mkdir(parents=True, exist_ok=True)

"""Writes of the operations app: a worker's heartbeat row."""

from __future__ import annotations

import datetime

from django.utils import timezone

from .models import WorkerHeartbeat

# Rows of workers gone for longer than this are removed (a killed worker never removes its own).
FORGET_AFTER = datetime.timedelta(days=1)


def heartbeat_record(*, hostname: str, pid: int, queues: list[str], concurrency: int, version: str,
                     started_at: datetime.datetime) -> WorkerHeartbeat:
    """Say that the worker `hostname` is alive now and consumes `queues`; forget workers long gone."""
    now = timezone.now()
    beat, _ = WorkerHeartbeat.objects.update_or_create(
        hostname=hostname,
        defaults={"pid": pid, "queues": sorted(queues), "concurrency": concurrency, "version": version,
                  "started_at": started_at, "last_seen_at": now})
    WorkerHeartbeat.objects.filter(last_seen_at__lt=now - FORGET_AFTER).delete()
    return beat


def heartbeat_remove(*, hostname: str, pid: int) -> None:
    """A worker stopping cleanly: its queues lose a consumer now, not when its row goes stale. Only its own
    row (a worker started since under the same name keeps its own)."""
    WorkerHeartbeat.objects.filter(hostname=hostname, pid=pid).delete()

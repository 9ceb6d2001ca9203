"""One row per running Celery worker, written by the worker itself (heartbeat.py)."""

from __future__ import annotations

from django.db import models


class WorkerHeartbeat(models.Model):
    """A worker's last sign of life: what it consumes and when it last said so. A worker that stops
    cleanly removes its row; one that is killed leaves a row that goes stale (settings.WORKER_HEARTBEAT_STALE_AFTER)."""

    hostname = models.CharField(max_length=255, unique=True, help_text="the Celery node name (celery@host)")
    pid = models.PositiveIntegerField()
    queues = models.JSONField(default=list, help_text="the queues it consumes")
    concurrency = models.PositiveIntegerField(default=1, help_text="tasks it runs at once")
    version = models.CharField(max_length=100, blank=True)
    started_at = models.DateTimeField()
    last_seen_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["hostname"]

    def __str__(self) -> str:
        return self.hostname

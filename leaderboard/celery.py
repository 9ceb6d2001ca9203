"""The Celery app. Queues: `scoring` (CPU), `gpu` (reference runners), `maintenance` (reconciler, clean-up)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leaderboard.settings")

app = Celery("leaderboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Every worker writes a heartbeat row (leaderboard/ops/heartbeat.py): the health checks and the status page
# count the live consumers of each queue from it.
from .ops.heartbeat import HeartbeatStep  # noqa: E402

app.steps["worker"].add(HeartbeatStep)

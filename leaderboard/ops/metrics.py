"""Prometheus metrics: django-prometheus's request metrics, plus figures computed from the database at
scrape time (the Celery-exporter pattern: nothing is counted in the processes, so every web process
answers the same and a restart loses nothing).

Under gunicorn each worker process has its own request counters. With PROMETHEUS_MULTIPROC_DIR set (the
compose file sets it, and docker/gunicorn.conf.py empties it at start and marks exited workers dead) a
scrape adds up every process's files; without it a scrape sees the counters of whichever process answered.
The database figures are the same either way.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from leaderboard.submissions.models import Submission

from .selectors import live_workers, queue_consumers

# Upper bounds of the scoring-time buckets, in seconds (a tiny split takes a second, a full one minutes).
SCORING_BUCKETS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 1800)
WINDOW = datetime.timedelta(hours=24)


def known_queues() -> list[str]:
    """The queues tasks are routed to, and the ones the health checks require."""
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    return sorted(routed | set(settings.HEALTH_REQUIRED_QUEUES) | {settings.CELERY_TASK_DEFAULT_QUEUE})


class DatabaseCollector(Collector):
    """Submissions by challenge, phase and status; scoring time over the last 24 h; submissions waiting for a
    worker; live workers per queue."""

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        submissions = GaugeMetricFamily("egomask_submissions", "Submissions by challenge, phase and status.",
                                        labels=["challenge", "phase", "status"])
        for row in (Submission.objects.order_by().values("phase__challenge__slug", "phase__slug", "status")
                    .annotate(n=Count("id"))):
            submissions.add_metric([row["phase__challenge__slug"], row["phase__slug"], row["status"]], row["n"])
        yield submissions

        waiting = GaugeMetricFamily("egomask_queue_waiting", "Submissions waiting for a scoring worker.",
                                    labels=["queue"])
        waiting.add_metric(["scoring"], Submission.objects.filter(status=Submission.Status.SUBMITTED).count())
        yield waiting

        timing = GaugeHistogramMetricFamily(
            "egomask_scoring_seconds", "Scoring time of the submissions finished in the last 24 hours.",
            labels=["challenge", "phase"])
        buckets = {f"le_{i}": Count("id", filter=Q(scoring_seconds__lte=bound))
                   for i, bound in enumerate(SCORING_BUCKETS)}
        for row in (Submission.objects.filter(status=Submission.Status.FINISHED, finished_at__gte=now - WINDOW,
                                              scoring_seconds__isnull=False)
                    .order_by().values("phase__challenge__slug", "phase__slug")
                    .annotate(total=Count("id"), seconds=Sum("scoring_seconds"), **buckets)):
            counts = [(str(float(bound)), row[f"le_{i}"]) for i, bound in enumerate(SCORING_BUCKETS)]
            timing.add_metric([row["phase__challenge__slug"], row["phase__slug"]],
                              [*counts, ("+Inf", row["total"])], row["seconds"] or 0.0)
        yield timing

        workers = live_workers(now=now)
        consumers = queue_consumers(workers=workers)
        live = GaugeMetricFamily("egomask_workers_live", "Workers with a fresh heartbeat consuming the queue.",
                                 labels=["queue"])
        for queue in sorted(set(known_queues()) | set(consumers)):
            live.add_metric([queue], len(consumers.get(queue, [])))
        yield live
        age = GaugeMetricFamily("egomask_worker_heartbeat_age_seconds", "Seconds since a live worker's last "
                                "heartbeat.", labels=["worker"])
        for worker in workers:
            age.add_metric([worker.hostname], (now - worker.last_seen_at).total_seconds())
        yield age


DATABASE_REGISTRY = CollectorRegistry(auto_describe=False)
DATABASE_REGISTRY.register(DatabaseCollector())


def metrics_text() -> bytes:
    """One scrape in Prometheus's text format: the request metrics of this process (of every process in
    multi-process mode), then the database figures."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return generate_latest(registry) + generate_latest(DATABASE_REGISTRY)

"""gunicorn's settings for the web service (docker/Dockerfile runs `gunicorn -c docker/gunicorn.conf.py`).

Prometheus multi-process mode: with PROMETHEUS_MULTIPROC_DIR set, every worker process writes its request
metrics to files there and a scrape of /metrics adds them up (leaderboard/ops/metrics.py). The folder is
emptied when gunicorn starts (files of a previous run would count twice) and a worker that exits is marked
dead, so its gauges stop counting.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "3"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
accesslog = "-"


def on_starting(server: object) -> None:
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        Path(folder).mkdir(parents=True, exist_ok=True)


def child_exit(server: object, worker: object) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]

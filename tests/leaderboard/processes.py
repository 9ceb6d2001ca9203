"""Real processes for end-to-end tests: a Celery worker on the test database and Redis."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import redis
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def worker_env(broker_url: str) -> dict[str, str]:
    """Environment for a child process that shares this test's database, storage and broker."""
    db = connection.settings_dict
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "leaderboard.settings_test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": broker_url,
        "EGOMASK_VAR_DIR": str(settings.VAR_DIR),
        "PRIVATE_STORAGE_DIR": str(settings.STORAGES["private"]["OPTIONS"]["location"]),
        "GROUND_TRUTH_CACHE_DIR": str(settings.GROUND_TRUTH_CACHE_DIR),
    }


@contextlib.contextmanager
def celery_worker(broker_url: str, queues: str = "scoring", log: Path | None = None) -> Iterator[subprocess.Popen]:
    """Start a real worker (solo pool) and stop it afterwards; the broker's Redis db is flushed first."""
    redis.Redis.from_url(broker_url).flushdb()
    command = [sys.executable, "-m", "celery", "-A", "leaderboard", "worker", "-Q", queues, "-c", "1", "-P", "solo",
               "--without-heartbeat", "--without-mingle", "--without-gossip", "--loglevel", "INFO"]
    output = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    child = subprocess.Popen(command, cwd=ROOT, env=worker_env(broker_url), stdout=output, stderr=subprocess.STDOUT)
    try:
        time.sleep(0.5)
        if child.poll() is not None:
            raise RuntimeError(f"the Celery worker exited at once with code {child.returncode}")
        yield child
    finally:
        child.terminate()
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        if log:
            output.close()  # type: ignore[union-attr]
        redis.Redis.from_url(broker_url).flushdb()

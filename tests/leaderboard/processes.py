"""Real processes for end-to-end tests: a Celery worker on the test database and a Redis broker."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import kombu.pools
import pytest
import redis
from django.conf import settings
from django.db import connection

from leaderboard import celery_app

ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    """A URL for the database this test process uses (the one pytest-django created)."""
    db = connection.settings_dict
    password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
    host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
    return f"postgres://{quote(db['USER'], safe='')}{password}@{host}:{port}/{db['NAME']}"


def worker_env(broker_url: str) -> dict[str, str]:
    """Environment for a child process that shares this test's database, storage and broker."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "leaderboard.settings_test",
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": broker_url,
        "EGOMASK_VAR_DIR": str(settings.VAR_DIR),
        "PRIVATE_STORAGE_DIR": str(settings.STORAGES["private"]["OPTIONS"]["location"]),
        "GROUND_TRUTH_CACHE_DIR": str(settings.GROUND_TRUTH_CACHE_DIR),
    }


def _point_celery_at(url: str) -> None:
    """Point this process's Celery app at `url`; pools made for the previous URL are dropped."""
    celery_app.conf.broker_url = url
    kombu.pools.reset()  # closes and forgets this process's connection and producer pools
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@contextlib.contextmanager
def sending_to(url: str) -> Iterator[None]:
    """This process sends tasks to the broker at `url` (which may be down) until the block ends."""
    previous = celery_app.conf.broker_url
    try:
        with pytest.MonkeyPatch.context() as patch:
            # Celery reads CELERY_BROKER_URL from the environment before its own configuration.
            patch.setenv("CELERY_BROKER_URL", url)
            patch.delenv("CELERY_BROKER_READ_URL", raising=False)
            patch.delenv("CELERY_BROKER_WRITE_URL", raising=False)
            _point_celery_at(url)
            yield
    finally:
        _point_celery_at(previous)


@contextlib.contextmanager
def redis_broker(url: str) -> Iterator[redis.Redis]:
    """This process sends tasks to `url`, a Redis database of the caller's own, flushed before and after."""
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        with sending_to(url):
            yield client
    finally:
        client.flushdb()
        client.close()


@contextlib.contextmanager
def celery_worker(broker_url: str, log: Path, queues: str = "scoring", pool: str = "solo",
                  env: dict[str, str] | None = None) -> Iterator[subprocess.Popen]:
    """A real `celery worker` (one process of `pool`) seeing this test's database and files, with
    `env` added to its environment; stopped afterwards."""
    command = [sys.executable, "-m", "celery", "-A", "leaderboard", "worker", "-Q", queues, "-c", "1", "-P", pool,
               "--without-heartbeat", "--without-mingle", "--without-gossip", "--loglevel", "INFO"]
    with log.open("wb") as output:
        child = subprocess.Popen(command, cwd=ROOT, env={**worker_env(broker_url), **(env or {})}, stdout=output,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        yield child
    finally:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=10)

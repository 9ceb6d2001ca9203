"""The health checks (django-health-check backends) beyond the stock database and cache ones: the broker,
private storage, and a live consumer per required queue.

Messages say what failed in words an operator can act on, and never hold a credential; the view shows
them to operators only (views.py), as the worker list's host names.
"""

from __future__ import annotations

import dataclasses
import datetime

from asgiref.sync import sync_to_async
from django.conf import settings
from health_check.base import HealthCheck
from health_check.checks import Storage
from health_check.exceptions import ServiceUnavailable
from kombu import Connection

from .models import WorkerHeartbeat
from .selectors import live_workers, queue_consumers


@dataclasses.dataclass
class Broker(HealthCheck):
    """A real connection to CELERY_BROKER_URL, with a short timeout (the URL and its password never show)."""

    timeout: datetime.timedelta = dataclasses.field(default=datetime.timedelta(seconds=3), repr=False)

    def run(self) -> None:
        seconds = self.timeout.total_seconds()
        connection = Connection(settings.CELERY_BROKER_URL, connect_timeout=seconds,
                                transport_options={**settings.CELERY_BROKER_TRANSPORT_OPTIONS,
                                                   "socket_timeout": seconds, "socket_connect_timeout": seconds})
        try:
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=seconds)
            channel = connection.default_channel
            client = getattr(channel, "client", None)
            if hasattr(client, "ping"):  # Redis: a command, not only an open socket (a loading Redis refuses it)
                client.ping()
        except Exception as exc:
            raise ServiceUnavailable(f"the broker ({connection.transport_cls}) does not answer: "
                                     f"{type(exc).__name__}") from exc
        finally:
            connection.release()


@dataclasses.dataclass
class PrivateStorage(Storage):
    """Write, read and delete a probe object in STORAGES["private"] (S3 in production, ./var otherwise);
    the stock check looks at the default storage."""

    alias: str = "private"

    def get_file_name(self) -> str:
        return f"health-check/{super().get_file_name().rsplit('/', 1)[-1]}"

    def run(self) -> None:
        try:
            super().run()
        except ServiceUnavailable:
            raise
        except Exception as exc:  # botocore's and the file system's errors: their type says enough
            raise ServiceUnavailable(f"private storage cannot write, read and delete a file: "
                                     f"{type(exc).__name__}") from exc


@dataclasses.dataclass
class QueueConsumer(HealthCheck):
    """At least one worker with a fresh heartbeat consumes `queue`."""

    queue: str = "scoring"

    async def run(self) -> None:
        # In the request's own thread (thread-sensitive): its connection, closed when the request ends.
        consumers = (await sync_to_async(_consumers_of)(self.queue))
        if not consumers:
            raise ServiceUnavailable(
                f"no live worker consumes the {self.queue} queue (none has written a heartbeat in the last "
                f"{settings.WORKER_HEARTBEAT_STALE_AFTER} s); its tasks wait until one starts")


def _consumers_of(queue: str) -> list[WorkerHeartbeat]:
    return queue_consumers(workers=live_workers()).get(queue, [])


def configured_checks() -> list[tuple[type[HealthCheck] | str, dict[str, object]]]:
    """Every check the full health page runs, in order: the services, then one per required queue."""
    return [("health_check.checks.Database", {}), ("health_check.checks.Cache", {}), (Broker, {}),
            (PrivateStorage, {}), *((QueueConsumer, {"queue": queue}) for queue in settings.HEALTH_REQUIRED_QUEUES)]


def check_name(check: HealthCheck) -> str:
    """The name a check has on the health page and in its JSON."""
    if isinstance(check, QueueConsumer):
        return f"{check.queue} queue"
    if isinstance(check, PrivateStorage):
        return "private storage"
    return {"Database": "database", "Cache": "cache", "Broker": "broker"}.get(type(check).__name__,
                                                                            type(check).__name__)

"""The worker's heartbeat: a thread in the worker's main process writes a WorkerHeartbeat row every
WORKER_HEARTBEAT_EVERY seconds.

Why a thread of its own, not the worker's timer: with an event loop (Redis) the timer runs in the main
process's loop, which a solo-pool worker blocks for as long as a task runs (a scoring can take twenty
minutes), and kombu's filesystem transport (the demo) has no loop at all. A thread beats whatever the
pool does. It is started after the pool (prefork children are forked first, so none inherits it mid-write)
and writes from the main process only: a heartbeat says the process that consumes the queues is alive.
A database error is logged and retried at the next beat; it never stops the worker.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from celery import bootsteps

log = logging.getLogger(__name__)


def worker_version() -> str:
    """What code a worker runs: the package and the scorer's versions."""
    from scoring.cli import version
    from scoring.evaluation import SCORER_VERSION

    return f"egomask {version()} (scorer {SCORER_VERSION})"


def consumed_queues(worker: Any) -> list[str]:
    """The queues the worker consumes now (from -Q, and any added since by remote control)."""
    consumer = getattr(worker, "consumer", None)
    task_consumer = getattr(consumer, "task_consumer", None)
    if task_consumer is not None and task_consumer.queues:
        return sorted({queue.name for queue in task_consumer.queues})
    return sorted(worker.app.amqp.queues.consume_from or worker.app.amqp.queues)


class HeartbeatStep(bootsteps.StartStopStep):
    """A worker bootstep: beat while the worker runs, remove the row when it stops cleanly."""

    requires = {"celery.worker.components:Pool"}

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, worker: Any) -> None:
        from django.conf import settings
        from django.utils import timezone

        started_at, pid, version = timezone.now(), os.getpid(), worker_version()
        every = settings.WORKER_HEARTBEAT_EVERY

        def run() -> None:
            while True:
                self._beat(worker, pid=pid, started_at=started_at, version=version)
                if self._stop.wait(every):
                    return

        self._thread = threading.Thread(target=run, name="egomask-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self, worker: Any, **fields: Any) -> None:
        from django.db import close_old_connections, connection

        from .services import heartbeat_record

        try:
            close_old_connections()  # this thread's connection, past CONN_MAX_AGE or broken
            heartbeat_record(hostname=worker.hostname, queues=consumed_queues(worker),
                             concurrency=int(worker.concurrency or 1), **fields)
        except Exception:  # the database is down, or the demo's SQLite is busy: the next beat tries again
            log.warning("The worker heartbeat could not be written; trying again at the next beat.", exc_info=True)
            connection.close()

    def stop(self, worker: Any) -> None:
        from django.db import connection

        from .services import heartbeat_remove

        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        try:
            heartbeat_remove(hostname=worker.hostname, pid=os.getpid())
        except Exception:  # then the row goes stale instead
            log.warning("The worker heartbeat could not be removed; it will go stale.", exc_info=True)
        finally:
            connection.close()

    terminate = stop

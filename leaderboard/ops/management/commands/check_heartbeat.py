"""`manage.py check_heartbeat`: exit 0 when this machine's worker has a fresh heartbeat, 1 otherwise (the
compose file's healthcheck of the workers)."""

from __future__ import annotations

import datetime
import socket
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from leaderboard.ops.models import WorkerHeartbeat


class Command(BaseCommand):
    help = "Exit 0 when the worker NODE wrote a heartbeat in the last MAX_AGE seconds, 1 (with why) when not."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--node", default=f"celery@{socket.gethostname()}",
                            help="the worker's node name (default: Celery's default on this machine, celery@HOST)")
        parser.add_argument("--max-age", type=int, default=None,
                            help="seconds (default: WORKER_HEARTBEAT_STALE_AFTER)")
        parser.add_argument("--queue", action="append", default=[],
                            help="also require that it consumes this queue (repeatable)")

    def handle(self, *args: Any, node: str, max_age: int | None, queue: list[str], **options: Any) -> None:
        max_age = settings.WORKER_HEARTBEAT_STALE_AFTER if max_age is None else max_age
        beat = WorkerHeartbeat.objects.filter(hostname=node).first()
        if beat is None:
            raise CommandError(f"{node} has written no heartbeat (not started yet, or stopped).")
        age = (timezone.now() - beat.last_seen_at) / datetime.timedelta(seconds=1)
        if age > max_age:
            raise CommandError(f"{node}'s last heartbeat is {age:.0f} s old (more than {max_age} s).")
        missing = sorted(set(queue) - set(beat.queues))
        if missing:
            raise CommandError(f"{node} does not consume {', '.join(missing)} (it consumes {', '.join(beat.queues)}).")
        self.stdout.write(f"{node} is alive: heartbeat {age:.0f} s ago, consuming {', '.join(beat.queues)}.")

"""Mail in the tests: a mail server that fails (the network is not reachable here, so this stands in for
SMTP's refusals), and the mail tasks run by their real code when queue.py sends them."""

from __future__ import annotations

import contextlib
import smtplib
from collections.abc import Iterator
from unittest import mock

from django.core.mail.backends.locmem import EmailBackend as LocmemBackend

from leaderboard import celery_app
from leaderboard.notifications.services import TASK_NAMES as MAIL_TASKS


class FlakySMTPBackend(LocmemBackend):
    """Refuses the messages whose numbers (1-based, counted over the test) are in `fail`, like a mail server
    that drops the connection; delivers the others to django.core.mail.outbox."""

    fail: set[int] = set()
    always = False
    tries = 0

    def send_messages(self, messages):  # type: ignore[no-untyped-def]
        for _ in messages:
            type(self).tries += 1
            if type(self).always or type(self).tries in type(self).fail:
                raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        return super().send_messages(messages)

    @classmethod
    def reset(cls, *, fail: set[int] = frozenset(), always: bool = False) -> None:  # type: ignore[assignment]
        cls.fail, cls.always, cls.tries = set(fail), always, 0


FLAKY = "tests.leaderboard.mailkit.FlakySMTPBackend"


@contextlib.contextmanager
def mail_tasks_run() -> Iterator[list[tuple[str, tuple]]]:
    """Every task queue.py sends is recorded; the mail tasks are run there and then, eagerly, by Celery's
    own apply() (retries included), as a worker would run them."""
    sent: list[tuple[str, tuple]] = []

    def send_task(name: str, args: tuple = (), **options: object) -> None:
        sent.append((name, tuple(args)))
        if name in MAIL_TASKS:
            celery_app.tasks[name].apply(args=args)

    import leaderboard.notifications.tasks  # noqa: F401  (registers them, as the worker's autodiscovery does)

    with mock.patch.object(celery_app, "send_task", side_effect=send_task):
        yield sent

"""A service the server depends on is down (the database, private file storage, the cache, the broker):
answer 503 with a sentence and Retry-After, never a 500 that reads like a bug.

Used by the API's exception handler and, for pages, by OutageMiddleware. Nothing here is a retry: the
request did not happen, and the client (the CLI, which retries 503s with its Idempotency-Key, or a
person) tries again. A submission whose row was saved is never answered this way: a broker outage after
the commit is logged and left to the reconciler (submissions/queue.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import InterfaceError as DatabaseInterfaceError
from django.db import OperationalError as DatabaseOperationalError
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

log = logging.getLogger(__name__)
RETRY_AFTER = 30  # seconds: most restarts are over by then


@dataclass(frozen=True)
class Outage:
    service: str  # "database", "storage", "cache", "broker"
    message: str


def _storage_error_types() -> tuple[type[BaseException], ...]:
    try:
        from botocore.exceptions import ConnectionClosedError, EndpointConnectionError, ReadTimeoutError
    except ImportError:  # the embedded demo keeps files on disk: no botocore needed
        return ()
    return (EndpointConnectionError, ConnectionClosedError, ReadTimeoutError)


def _cache_error_types() -> tuple[type[BaseException], ...]:
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError
    except ImportError:
        return ()
    return (RedisConnectionError, RedisTimeoutError)


def outage_of(exc: BaseException) -> Outage | None:
    """The outage `exc` means, or None when it is something else (a bug is still a 500)."""
    if isinstance(exc, DatabaseOperationalError | DatabaseInterfaceError):
        service = "database"
    elif isinstance(exc, _storage_error_types()):
        service = "storage"
    elif isinstance(exc, _cache_error_types()):
        service = "cache"
    else:
        try:
            from kombu.exceptions import OperationalError as BrokerOperationalError
        except ImportError:  # pragma: no cover - kombu comes with celery
            return None
        if not isinstance(exc, BrokerOperationalError):
            return None
        service = "broker"
    words = {"database": "its database", "storage": "its file storage", "cache": "its cache",
             "broker": "its task queue"}[service]
    return Outage(service, f"The server cannot reach {words} right now, so this request was not carried out "
                           f"(nothing was submitted or changed). Try again in a minute.")


def log_outage(outage: Outage, exc: BaseException, where: str) -> None:
    log.error("%s unavailable in %s: %s: %s", outage.service, where, type(exc).__name__, exc)


class OutageMiddleware:
    """Pages: an outage of a service answers the 503 page with Retry-After."""

    def __init__(self, get_response) -> None:  # type: ignore[no-untyped-def]
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        outage = outage_of(exc)
        if outage is None:
            return None
        log_outage(outage, exc, request.path)
        # Rendered without a request context: the context processors would ask the database again.
        body = render_to_string("503.html", {"message": outage.message})
        response = HttpResponse(body, status=503)
        response["Retry-After"] = str(RETRY_AFTER)
        return response

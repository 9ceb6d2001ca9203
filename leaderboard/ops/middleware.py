"""The liveness answer, before every other middleware."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

LIVENESS_PATH = "/health/live/"


class LivenessMiddleware:
    """Answer LIVENESS_PATH with 200 "ok" and touch nothing: no database, session, cache or host check, and no
    HTTPS redirect, so that a load balancer or a container probe over plain HTTP, under whatever Host header,
    learns only that this process serves requests. First in MIDDLEWARE: the probes do not count in the
    request metrics either."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == LIVENESS_PATH:
            return liveness_response()
        return self.get_response(request)


def liveness_response() -> HttpResponse:
    response = HttpResponse("ok\n", content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = "no-store"
    return response

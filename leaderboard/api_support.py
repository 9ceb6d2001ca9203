"""What every API endpoint shares: authentication, the one error shape, throttles, phase lookup by id."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.throttling import UserRateThrottle
from rest_framework.views import exception_handler as drf_exception_handler

from .challenges import selectors as challenge_selectors
from .challenges.models import Phase
from .challenges.permissions import Can, organizer_can
from .errors import ApplicationError, NotFound
from .outages import RETRY_AFTER, log_outage, outage_of

log = logging.getLogger(__name__)


def phase_or_404(request: Any, phase_id: int, related: tuple[str, ...] = (), needs: Can | None = None) -> Phase:
    """The phase named by id in an /api/v1/ URL, if the caller may see it (one of an unpublished challenge
    only for organizers; with `needs`, only for the organizers who may do that); otherwise NotFound, in the
    API's error shape, the same as for a phase that does not exist. `related`: one-to-one relations read in
    the same query."""
    phase = challenge_selectors.phase_get_by_id(phase_id=phase_id, viewer=request.user, related=related)
    if phase is not None and needs is not None and not organizer_can(request.user, phase.challenge_id, needs):
        phase = None
    if phase is None:
        raise NotFound(f"There is no phase {phase_id}; GET /api/v1/challenges/ lists the phases.")
    return phase


def error(message: str, http_status: int, detail: dict[str, Any] | None = None,
          headers: dict[str, str] | None = None) -> Response:
    return Response({"error": message, "detail": detail or {}}, status=http_status, headers=headers)


def _first_message(data: Any) -> str:
    """A readable sentence from DRF's validation error structure."""
    if isinstance(data, dict):
        for field, value in data.items():
            text = _first_message(value)
            return text if field in ("non_field_errors", "detail") else f"{field}: {text}"
    if isinstance(data, list) and data:
        return _first_message(data[0])
    return str(data)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every error as {"error": "<sentence a person can act on>", "detail": {...}} with the right status."""
    if isinstance(exc, ApplicationError):
        headers = {}
        resets = exc.detail.get("resets_at") if exc.detail else None
        if exc.status == status.HTTP_429_TOO_MANY_REQUESTS and resets:
            # No Retry-After for a used quota: generic HTTP clients honour it, would sleep until the
            # reset and then silently spend the next day's quota. Throttles (below) do send it.
            headers["X-Quota-Resets-At"] = resets
        return error(exc.message, exc.status, exc.detail, headers)
    if isinstance(exc, RequestDataTooBig):  # Django's DATA_UPLOAD_MAX_MEMORY_SIZE, for the form fields
        return error("The form fields of this request are too large; send the file as `file` and keep the "
                     "other fields short.", status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, SuspiciousOperation):  # too many form fields or files, and the like
        return error(f"The request could not be read: {exc}", status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, Http404):
        return error("Not found.", status.HTTP_404_NOT_FOUND)
    if isinstance(exc, PermissionDenied):
        return error("You do not have permission to do this.", status.HTTP_403_FORBIDDEN)
    if isinstance(exc, exceptions.Throttled):
        wait = int(exc.wait or 0)
        return error(f"Too many requests; try again in {wait} seconds.", status.HTTP_429_TOO_MANY_REQUESTS,
                     {"retry_after": wait}, {"Retry-After": str(wait)})
    if isinstance(exc, exceptions.ValidationError):
        return error(_first_message(exc.detail), status.HTTP_400_BAD_REQUEST, {"fields": exc.detail})
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        response = drf_exception_handler(exc, context)
        message = ("Log in first: send 'Authorization: Token <token>' (get one with POST /api/v1/auth/token/)."
                   if isinstance(exc, exceptions.NotAuthenticated) else str(exc.detail))
        return error(message, status.HTTP_401_UNAUTHORIZED, headers=dict(response.items()) if response else None)
    response = drf_exception_handler(exc, context)
    if response is not None:
        detail = response.data.get("detail", "") if isinstance(response.data, dict) else ""
        return error(str(detail) or _first_message(response.data), response.status_code,
                     headers=dict(response.items()))
    outage = outage_of(exc)
    if outage is not None:  # a service is down: say so, and when to try again (the CLI retries 503s)
        log_outage(outage, exc, context.get("view").__class__.__name__ if context.get("view") else "API")
        return error(outage.message, status.HTTP_503_SERVICE_UNAVAILABLE,
                     {"service": outage.service, "retry_after": RETRY_AFTER}, {"Retry-After": str(RETRY_AFTER)})
    # A bug: log it with its traceback, and still answer in the one shape.
    log.exception("unhandled error in %s", context.get("view").__class__.__name__ if context.get("view") else "API")
    return error("Something went wrong on the server; it has been logged. Try again later.",
                 status.HTTP_500_INTERNAL_SERVER_ERROR)


class ErrorOutput(serializers.Serializer):
    """The one error shape (documentation: the exception handler writes it)."""

    error = serializers.CharField(help_text="what went wrong, in a sentence a person can act on")
    detail = serializers.DictField(help_text="machine-readable specifics, e.g. fields, limit, resets_at")


_ERROR_MEANINGS = {
    400: "The request is invalid; `error` says what to change.",
    401: "No valid token: send 'Authorization: Token <token>' or 'Authorization: Bearer <token>'.",
    403: "Not allowed: not your team, no team, or the phase is closed.",
    404: "No such object, or not one you may see.",
    409: "The object is not in a state that allows this.",
    413: "The file is larger than the limit in `detail`.",
    429: "Quota used (`detail.resets_at`, header X-Quota-Resets-At) or too many requests (header Retry-After).",
    503: "A service the server needs (`detail.service`) is down; nothing was done. Try again after Retry-After.",
}


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """OpenAPI responses for the error statuses an endpoint can answer with."""
    return {code: OpenApiResponse(ErrorOutput, description=_ERROR_MEANINGS[code]) for code in codes}


class _RateFromSettings:
    """Read the rate when asked (DRF reads it once at import), so a settings change takes effect."""

    scope: str

    def get_rate(self) -> str | None:
        from rest_framework.settings import api_settings

        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class TokenThrottle(_RateFromSettings, UserRateThrottle):
    scope = "token"

    def get_cache_key(self, request, view):  # type: ignore[no-untyped-def]
        # Anonymous by definition: key on the address (and the user name tried, to slow guessing).
        username = str(request.data.get("username", ""))[:150] if hasattr(request, "data") else ""
        return self.cache_format % {"scope": self.scope, "ident": f"{self.get_ident(request)}:{username}"}


class SubmitThrottle(_RateFromSettings, UserRateThrottle):
    scope = "submit"

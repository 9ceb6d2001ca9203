"""One application error type. Services raise it; the web shows `message`, the API returns
{"error": message, "detail": detail} with `status`."""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    status = 400

    def __init__(self, message: str, *, detail: dict[str, Any] | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail or {}
        if status is not None:
            self.status = status


class NotAllowed(ApplicationError):
    status = 403


class NotFound(ApplicationError):
    status = 404


class Conflict(ApplicationError):
    status = 409


class TooLarge(ApplicationError):
    status = 413


class QuotaExceeded(ApplicationError):
    status = 429

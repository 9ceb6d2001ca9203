"""Error reporting to Sentry: off unless SENTRY_DSN is set (settings.py calls sentry_init)."""

from __future__ import annotations

import re
from typing import Any

# sentry-sdk's own scrubber matches whole key names (`token`, `password`); a local variable or a field named
# `api_token`, `upload_sig` or `invite_code` would pass it. Any key containing one of these words is replaced.
SENSITIVE = re.compile(r"pass|pwd|token|secret|cookie|session|auth|csrf|sig|api_?key|private|credential|invite",
                       re.IGNORECASE)
FILTERED = "[Filtered]"


def scrub(value: Any) -> Any:
    """`value` with every dict entry whose key looks sensitive replaced, at any depth (stack-frame locals,
    request data, extra context)."""
    if isinstance(value, dict):
        return {key: FILTERED if isinstance(key, str) and SENSITIVE.search(key) else scrub(item)
                for key, item in value.items()}
    if isinstance(value, list):
        return [scrub(item) for item in value]
    return value


def _before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    return scrub(event)


def sentry_init(*, dsn: str, environment: str, traces_sample_rate: float, release: str) -> bool:
    """Start sentry-sdk with the Django and Celery integrations when `dsn` is set; say whether it started.

    send_default_pii=False: no user, IP address, cookies or request headers that identify anyone; sentry-sdk's
    scrubber and `scrub` above replace passwords, tokens, secrets and session values in what is sent."""
    if not dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(dsn=dsn, environment=environment or None, release=release or None, send_default_pii=False,
                    traces_sample_rate=traces_sample_rate, before_send=_before_send,
                    before_send_transaction=_before_send,
                    integrations=[DjangoIntegration(), CeleryIntegration()])
    return True

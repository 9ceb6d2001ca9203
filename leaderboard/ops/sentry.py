"""Error reporting to Sentry: off unless SENTRY_DSN is set (settings.py calls sentry_init)."""

from __future__ import annotations


def sentry_init(*, dsn: str, environment: str, traces_sample_rate: float, release: str) -> bool:
    """Start sentry-sdk with the Django and Celery integrations when `dsn` is set; say whether it started.

    send_default_pii=False: no user, IP address, cookies or request headers that identify anyone, and
    sentry-sdk's scrubber replaces passwords, tokens, secrets and session values in what is sent."""
    if not dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(dsn=dsn, environment=environment or None, release=release, send_default_pii=False,
                    traces_sample_rate=traces_sample_rate,
                    integrations=[DjangoIntegration(), CeleryIntegration()])
    return True

"""Run as a script by test_sentry.py: the real settings (Sentry on when SENTRY_DSN is set), a request to a view
that fails with secrets in its locals, its form, its headers and its cookies; prints what sentry-sdk is."""

from __future__ import annotations

import json
import sys

import django
from django.http import HttpRequest, HttpResponse
from django.urls import path


def boom(request: HttpRequest) -> HttpResponse:
    password = request.POST["password"]  # noqa: F841 - a local the report must not carry
    api_token = request.headers["Authorization"]  # noqa: F841
    raise RuntimeError("boom in a view")


urlpatterns = [path("boom/", boom)]

if __name__ == "__main__":
    django.setup()
    import sentry_sdk
    from django.conf import settings
    from django.test import Client, override_settings

    client = sentry_sdk.get_client()
    report = {"enabled": settings.SENTRY_ENABLED, "active": client.is_active(),
              "integrations": sorted(getattr(client, "integrations", {}) or {}),
              "send_default_pii": client.options.get("send_default_pii") if client.is_active() else None}
    if "--request" in sys.argv:
        with override_settings(ROOT_URLCONF="tests.leaderboard.sentry_probe", ALLOWED_HOSTS=["testserver"],
                               SECURE_SSL_REDIRECT=False):
            browser = Client(raise_request_exception=False)
            browser.cookies["sessionid"] = "session-cookie-secret-value"
            browser.cookies["csrftoken"] = "csrf-cookie-secret-value"
            response = browser.post("/boom/", {"password": "hunter2-password-secret", "username": "alice"},
                                    HTTP_AUTHORIZATION="Token api-token-secret-value")
            report["status"] = response.status_code
        sentry_sdk.flush(timeout=10)
    print(json.dumps(report))

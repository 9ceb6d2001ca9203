"""Error reports: a real sentry-sdk sends a view's error to a local HTTP server standing in for Sentry, with no
password, token or cookie in it; without SENTRY_DSN nothing is initialised and nothing is sent."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from . import processes

SECRETS = ("hunter2-password-secret", "api-token-secret-value", "session-cookie-secret-value",
           "csrf-cookie-secret-value")


class FakeSentry(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Recorder)
        self.envelopes: list[bytes] = []

    @property
    def dsn(self) -> str:
        return f"http://publickey@127.0.0.1:{self.server_address[1]}/42"


class Recorder(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        encoding = self.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        elif encoding == "br":
            import brotli

            body = brotli.decompress(body)
        self.server.envelopes.append(body)  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def sentry() -> Iterator[FakeSentry]:
    server = FakeSentry()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def probe(*args: str, **env: str) -> dict:
    environment = {**processes.worker_env("redis://127.0.0.1:6379/14"), **env}
    if "SENTRY_DSN" not in env:
        environment.pop("SENTRY_DSN", None)  # this machine's own, if any, must not leak into the check
    done = subprocess.run([sys.executable, "-m", "tests.leaderboard.sentry_probe", *args], cwd=processes.ROOT,
                          env=environment, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def events(envelopes: list[bytes]) -> list[dict]:
    """The error events among the envelopes' items (an envelope: a header line, then item header/payload pairs)."""
    found = []
    for envelope in envelopes:
        lines = envelope.split(b"\n")
        for header, payload in zip(lines[1::2], lines[2::2], strict=False):
            if json.loads(header).get("type") == "event":
                found.append(json.loads(payload))
    return found


@pytest.mark.django_db(transaction=True)
def test_it_reports_a_views_error_without_secrets(sentry):
    report = probe("--request", SENTRY_DSN=sentry.dsn, SENTRY_ENVIRONMENT="ops-test")
    assert report["enabled"] is True and report["active"] is True and report["status"] == 500
    assert {"django", "celery"} <= set(report["integrations"]) and report["send_default_pii"] is False
    [event] = events(sentry.envelopes)
    assert event["exception"]["values"][-1]["value"] == "boom in a view"
    assert event["environment"] == "ops-test"
    # The form is sent with the password replaced; no headers, cookies or user travel with send_default_pii off.
    assert event["request"] == {"data": {"password": "[Filtered]", "username": "alice"}}
    # The failing frame's locals travel (they help), with the secret ones replaced.
    frame = event["exception"]["values"][-1]["stacktrace"]["frames"][-1]
    assert frame["function"] == "boom"
    assert frame["vars"]["password"] == frame["vars"]["api_token"] == "[Filtered]"
    raw = b"".join(sentry.envelopes).decode()
    for secret in SECRETS:
        assert secret not in raw, secret
    assert "user" not in event or not event["user"].get("ip_address")


@pytest.mark.django_db(transaction=True)
def test_it_initialises_nothing_without_a_dsn(sentry):
    report = probe("--request")
    assert report == {"enabled": False, "active": False, "integrations": [], "send_default_pii": None,
                      "status": 500}
    assert sentry.envelopes == []

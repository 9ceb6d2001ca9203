"""`manage.py check --deploy` under production settings (a subprocess with only the production environment),
and what the HTTPS settings do to a request behind a TLS-terminating proxy."""

from __future__ import annotations

import importlib.util
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

import leaderboard

from .compose import OPERATOR, compose, service_env
from .conftest import PASSWORD

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_FILE = Path(leaderboard.__file__).parent / "settings.py"
CHECK = [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"]


def production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """What a production web process gets (docker/compose.yml's variables), and nothing of this test run's."""
    env = {
        "PATH": os.environ["PATH"], "HOME": str(tmp_path), "LANG": "C.UTF-8",
        "DJANGO_SETTINGS_MODULE": "leaderboard.settings", "EGOMASK_VAR_DIR": str(tmp_path / "var"),
        "DATABASE_URL": "postgres://egomask:pw@db.example.org:5432/egomask",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "CACHE_URL": "redis://redis.example.org:6379/1", "CELERY_BROKER_URL": "redis://redis.example.org:6379/0",
        "S3_BUCKET": "egomask-private", "S3_ENDPOINT_URL": "https://s3.example.org",
        "S3_ACCESS_KEY_ID": "AK", "S3_SECRET_ACCESS_KEY": "SK",
        "ALLOWED_HOSTS": "egomask.example.org", "CSRF_TRUSTED_ORIGINS": "https://egomask.example.org",
        "SITE_URL": "https://egomask.example.org",
    }
    env.update(extra)
    return env


def check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(CHECK, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_it_passes_the_deploy_checks_on_the_production_defaults(tmp_path):
    done = check_deploy(production_env(tmp_path))
    assert done.returncode == 0, done.stderr
    # Only the HSTS preload reminder is silenced: preloading is the domain owner's decision (settings.py).
    assert "System check identified no issues (1 silenced)." in done.stdout


def test_it_passes_them_under_the_environment_compose_gives_the_web_service(tmp_path):
    # docker/compose.yml's own variables for `web`, filled as compose fills them from what the operator exports
    # (Sentry and metrics on), plus where this machine keeps its files.
    config = compose({**OPERATOR, "SENTRY_DSN": "https://key@sentry.example.org/1", "METRICS_TOKEN": "t" * 32})
    env = service_env(config["services"]["web"])
    (metrics := tmp_path / "prometheus").mkdir()
    env.update({"PATH": os.environ["PATH"], "HOME": str(tmp_path), "LANG": "C.UTF-8",
                "DJANGO_SETTINGS_MODULE": "leaderboard.settings", "EGOMASK_VAR_DIR": str(tmp_path / "var"),
                "PROMETHEUS_MULTIPROC_DIR": str(metrics)})
    done = check_deploy(env)
    assert done.returncode == 0, done.stderr
    assert "System check identified no issues (1 silenced)." in done.stdout


def test_it_passes_them_behind_a_proxy_and_with_preload_chosen(tmp_path):
    done = check_deploy(production_env(tmp_path, BEHIND_PROXY="true", SECURE_HSTS_PRELOAD="true"))
    assert done.returncode == 0, done.stderr
    assert "System check identified no issues (0 silenced)." in done.stdout


def test_it_names_every_missing_protection_when_https_is_switched_off(tmp_path):
    # SECURE_COOKIES=false: trying the stack over plain HTTP on another host. Not a deployment, and the
    # checks say why.
    done = check_deploy(production_env(tmp_path, SECURE_COOKIES="false"))
    assert done.returncode == 1
    for check in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert check in done.stderr, (check, done.stderr)


def test_it_refuses_a_short_secret_key(tmp_path):
    done = check_deploy(production_env(tmp_path, SECRET_KEY="short"))
    assert done.returncode == 1
    assert "security.W009" in done.stderr


# --- the settings at work: a request through a TLS-terminating proxy ---------------------------------


@pytest.fixture
def production_https(settings, monkeypatch, tmp_path):
    """The running settings switched to what production settings say about HTTPS (behind a proxy)."""
    for name, value in production_env(tmp_path, BEHIND_PROXY="true").items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("leaderboard._settings_https_probe", SETTINGS_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name in ("SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS",
                 "SECURE_HSTS_PRELOAD", "SECURE_PROXY_SSL_HEADER", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE",
                 "X_FRAME_OPTIONS", "SECURE_REFERRER_POLICY", "SECURE_CONTENT_TYPE_NOSNIFF"):
        setattr(settings, name, getattr(module, name))
    return module


def test_it_redirects_plain_http_and_sends_hsts_over_https(client, production_https, db):
    plain = client.get("/challenges/")
    assert plain.status_code == 301 and plain["Location"] == "https://testserver/challenges/"
    assert "Strict-Transport-Security" not in plain  # never over plain HTTP (browsers ignore it there)
    # The proxy terminated TLS and says so; Django trusts it because BEHIND_PROXY is set.
    secure = client.get("/challenges/", HTTP_X_FORWARDED_PROTO="https")
    assert secure.status_code == 200
    assert secure["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert (secure["X-Frame-Options"], secure["Referrer-Policy"], secure["X-Content-Type-Options"]) == (
        "DENY", "same-origin", "nosniff")


def test_it_sends_the_session_and_csrf_cookies_as_secure_only(client, production_https, eve):
    https = {"HTTP_X_FORWARDED_PROTO": "https"}
    page = client.get("/login/", **https)
    assert page.cookies["csrftoken"]["secure"] is True
    token = page.cookies["csrftoken"].value
    logged_in = client.post("/login/", {"login": "eve", "password": PASSWORD, "csrfmiddlewaretoken": token},
                            **https)
    assert logged_in.status_code == 302
    session = logged_in.cookies["sessionid"]
    assert (session["secure"], session["httponly"]) == (True, True)

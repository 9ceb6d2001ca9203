"""Settings from the environment: typed helpers that fail loudly, and what the settings module builds
from them. No database."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

import leaderboard
from leaderboard.env import ImproperlyConfiguredEnv, env_bool, env_int, env_list, env_str
from leaderboard.startup import prepare_local_folders

SETTINGS_FILE = Path(leaderboard.__file__).parent / "settings.py"
ENV_NAMES = ("DATABASE_URL", "SECRET_KEY", "CACHE_URL", "SITE_URL", "S3_BUCKET", "S3_ENDPOINT_URL", "S3_ACCESS_KEY_ID",
             "S3_SECRET_ACCESS_KEY", "S3_REGION", "S3_PREFIX", "S3_ADDRESSING_STYLE", "PRIVATE_STORAGE_DIR",
             "CELERY_BROKER_URL", "DEBUG", "SUBMISSION_MAX_BYTES", "SCORING_TIME_LIMIT", "SCORING_STUCK_AFTER",
             "GROUND_TRUTH_CACHE_DIR", "SECURE_COOKIES", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS",
             "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD", "BEHIND_PROXY", "EMAIL_URL", "EMAIL_BACKEND",
             "EMAIL_HOST", "EMAIL_PORT", "EMAIL_HOST_USER", "EMAIL_HOST_PASSWORD", "EMAIL_USE_TLS", "EMAIL_USE_SSL",
             "EMAIL_FILE_PATH", "DEFAULT_FROM_EMAIL")


@pytest.mark.parametrize("raw", ["1", "true", "TRUE", "Yes", "on", " on "])
def test_it_reads_true_booleans(monkeypatch, raw):
    monkeypatch.setenv("EGOMASK_FLAG", raw)
    assert env_bool("EGOMASK_FLAG", False) is True


@pytest.mark.parametrize("raw", ["0", "false", "False", "no", "OFF"])
def test_it_reads_false_booleans(monkeypatch, raw):
    monkeypatch.setenv("EGOMASK_FLAG", raw)
    assert env_bool("EGOMASK_FLAG", True) is False


@pytest.mark.parametrize("default", [True, False])
def test_it_uses_the_boolean_default_when_unset_or_empty(monkeypatch, default):
    monkeypatch.delenv("EGOMASK_FLAG", raising=False)
    assert env_bool("EGOMASK_FLAG", default) is default
    monkeypatch.setenv("EGOMASK_FLAG", "")
    assert env_bool("EGOMASK_FLAG", default) is default


@pytest.mark.parametrize("raw", ["maybe", "2", "y", "enabled", "tru"])
def test_it_fails_loudly_on_a_bad_boolean(monkeypatch, raw):
    monkeypatch.setenv("EGOMASK_FLAG", raw)
    with pytest.raises(ImproperlyConfiguredEnv) as caught:
        env_bool("EGOMASK_FLAG", False)
    assert f"EGOMASK_FLAG={raw!r}" in str(caught.value)
    assert "not a boolean" in str(caught.value)


@pytest.mark.parametrize(("raw", "value"), [("42", 42), ("-3", -3), ("0", 0), (" 7 ", 7), ("2147483648", 2**31)])
def test_it_reads_integers(monkeypatch, raw, value):
    monkeypatch.setenv("EGOMASK_NUMBER", raw)
    assert env_int("EGOMASK_NUMBER", 5) == value


def test_it_uses_the_integer_default_when_unset_or_empty(monkeypatch):
    monkeypatch.delenv("EGOMASK_NUMBER", raising=False)
    assert env_int("EGOMASK_NUMBER", 5) == 5
    monkeypatch.setenv("EGOMASK_NUMBER", "")
    assert env_int("EGOMASK_NUMBER", 5) == 5


@pytest.mark.parametrize("raw", ["ten", "4.5", "1e3", "2GB", "0x10"])
def test_it_fails_loudly_on_a_bad_integer(monkeypatch, raw):
    monkeypatch.setenv("EGOMASK_NUMBER", raw)
    with pytest.raises(ImproperlyConfiguredEnv) as caught:
        env_int("EGOMASK_NUMBER", 5)
    assert str(caught.value) == f"EGOMASK_NUMBER={raw!r} is not an integer"
    assert caught.value.__cause__ is None  # one clear message, not a chained ValueError


def test_it_reads_lists_and_strings(monkeypatch):
    monkeypatch.setenv("EGOMASK_HOSTS", " a.example.org, b.example.org,, ")
    assert env_list("EGOMASK_HOSTS", ["x"]) == ["a.example.org", "b.example.org"]
    monkeypatch.setenv("EGOMASK_HOSTS", "   ")
    assert env_list("EGOMASK_HOSTS", ["x"]) == ["x"]
    monkeypatch.delenv("EGOMASK_HOSTS")
    assert env_list("EGOMASK_HOSTS", ["x"]) == ["x"]
    assert env_str("EGOMASK_HOSTS", "fallback") == "fallback"


# --- the settings module, loaded under another name so the running settings stay untouched ----


@pytest.fixture
def load_settings(monkeypatch, tmp_path):
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EGOMASK_VAR_DIR", str(tmp_path / "var"))
    loaded: list[str] = []

    def load(**env: str) -> ModuleType:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        module_name = f"leaderboard._settings_probe_{len(loaded)}"
        loaded.append(module_name)
        spec = importlib.util.spec_from_file_location(module_name, SETTINGS_FILE)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    yield load
    for name in loaded:
        sys.modules.pop(name, None)


def test_it_runs_without_environment_on_sqlite_and_local_storage(load_settings, tmp_path):
    module = load_settings()
    assert module.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
    assert module.STORAGES["private"]["BACKEND"] == "django.core.files.storage.FileSystemStorage"
    assert module.STORAGES["private"]["OPTIONS"]["location"] == str(tmp_path / "var" / "private")
    assert module.CELERY_BROKER_URL == "filesystem://"
    assert module.SUBMISSION_MAX_BYTES == 2 * 1024**3
    assert module.SCORING_STUCK_AFTER == 1500 + 300
    assert module.CACHES["default"]["BACKEND"] == "django.core.cache.backends.locmem.LocMemCache"
    # One random secret per checkout, the same on the next start (start-up keeps it, not the import).
    assert len(module.SECRET_KEY) >= 50
    prepare_local_folders(module)
    assert (tmp_path / "var" / "secret_key").read_text() == module.SECRET_KEY
    assert (tmp_path / "var" / "secret_key").stat().st_mode & 0o077 == 0
    assert load_settings().SECRET_KEY == module.SECRET_KEY


def test_it_creates_nothing_on_import(load_settings, tmp_path):
    module = load_settings()
    assert not (tmp_path / "var").exists()
    prepare_local_folders(module)  # what every process does when it starts
    for folder in ("static", "broker/queue", "broker/processed", "broker/control"):
        assert (tmp_path / "var" / folder).is_dir(), folder


def test_it_makes_no_secret_file_when_the_key_is_given(load_settings, tmp_path):
    module = load_settings(SECRET_KEY="k" * 50, CELERY_BROKER_URL="redis://redis.example.org:6379/0")
    prepare_local_folders(module)
    assert module.SECRET_KEY == "k" * 50
    assert not (tmp_path / "var" / "secret_key").exists()
    assert not (tmp_path / "var" / "broker").exists()


def test_it_routes_and_sends_only_tasks_that_exist():
    import leaderboard.baselines.tasks
    import leaderboard.challenges.tasks
    import leaderboard.notifications.tasks
    import leaderboard.submissions.tasks  # noqa: F401  (registers the tasks, as a worker's autodiscovery does)
    from leaderboard import celery_app
    from leaderboard.baselines.dispatch import RUN_GPU_SHARD
    from leaderboard.baselines.dispatch import TASK_NAMES as BASELINE_TASK_NAMES
    from leaderboard.notifications.services import RETRY_MAIL, SEND_ANNOUNCEMENT, SEND_SUBMISSION_MAIL
    from leaderboard.notifications.services import TASK_NAMES as MAIL_TASK_NAMES
    from leaderboard.settings import CELERY_BEAT_SCHEDULE, CELERY_TASK_ROUTES
    from leaderboard.submissions.queue import CLEAN_UP_UPLOADS, RECONCILE_SUBMISSIONS, SNAPSHOT_BOARDS, TASK_NAMES

    registered = set(celery_app.tasks)
    assert set(CELERY_TASK_ROUTES) <= registered, set(CELERY_TASK_ROUTES) - registered
    # Sent by name: a typo would never run.
    assert set(TASK_NAMES) | set(BASELINE_TASK_NAMES) | set(MAIL_TASK_NAMES) <= registered
    assert {entry["task"] for entry in CELERY_BEAT_SCHEDULE.values()} <= registered
    # Only the GPU runners' shards go to the gpu queue; the reconciler and the clean-up have a queue of their
    # own (a busy scoring queue must not delay a recovery), shared with the mails; everything else is CPU work.
    queues = {name: route["queue"] for name, route in CELERY_TASK_ROUTES.items() if route["queue"] != "scoring"}
    assert queues == {RUN_GPU_SHARD: "gpu", RECONCILE_SUBMISSIONS: "maintenance", CLEAN_UP_UPLOADS: "maintenance",
                      SNAPSHOT_BOARDS: "maintenance", SEND_SUBMISSION_MAIL: "maintenance",
                      SEND_ANNOUNCEMENT: "maintenance", RETRY_MAIL: "maintenance"}


@pytest.mark.parametrize(("name", "raw"), [("DEBUG", "sometimes"), ("SUBMISSION_MAX_BYTES", "2G"),
                                           ("SCORING_TIME_LIMIT", "25min")])
def test_it_refuses_to_start_on_a_bad_value(load_settings, name, raw):
    with pytest.raises(ImproperlyConfiguredEnv, match=name):
        load_settings(**{name: raw})


def test_it_requires_a_secret_key_with_a_production_database(load_settings):
    with pytest.raises(ImproperlyConfiguredEnv, match="SECRET_KEY must be set when DATABASE_URL is"):
        load_settings(DATABASE_URL="postgres://u@db.example.org:5432/egomask", CACHE_URL="redis://r:6379/1",
                      SITE_URL="https://egomask.example.org")


def test_it_requires_a_shared_cache_with_a_production_database(load_settings):
    with pytest.raises(ImproperlyConfiguredEnv, match="CACHE_URL must be set when DATABASE_URL is"):
        load_settings(DATABASE_URL="postgres://u@db.example.org:5432/egomask", SECRET_KEY="k" * 50,
                      SITE_URL="https://egomask.example.org")


def test_it_requires_the_sites_address_with_a_production_database(load_settings):
    assert load_settings().SITE_URL == "http://127.0.0.1:8000"  # the embedded demo: its own address
    with pytest.raises(ImproperlyConfiguredEnv, match="SITE_URL must be set when DATABASE_URL is .*mails, receipts"):
        load_settings(DATABASE_URL="postgres://u@db.example.org:5432/egomask", SECRET_KEY="k" * 50,
                      CACHE_URL="redis://r:6379/1")
    production = load_settings(DATABASE_URL="postgres://u@db/egomask", SECRET_KEY="k" * 50, CACHE_URL="redis://r/1",
                               SITE_URL="https://egomask.example.org/")
    assert production.SITE_URL == "https://egomask.example.org"


def test_it_uses_postgres_redis_and_s3_from_the_environment(load_settings):
    module = load_settings(
        DATABASE_URL="postgres://u:p@db.example.org:5432/egomask", SECRET_KEY="k" * 50,
        CELERY_BROKER_URL="redis://redis.example.org:6379/0", S3_BUCKET="egomask-private",
        S3_ENDPOINT_URL="http://s3.example.org:8333", S3_ACCESS_KEY_ID="AK", S3_SECRET_ACCESS_KEY="SK",
        SCORING_TIME_LIMIT="100", CACHE_URL="redis://redis.example.org:6379/1", SITE_URL="https://egomask.example.org",
    )
    assert module.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    assert module.DATABASES["default"]["NAME"] == "egomask"
    assert module.CELERY_BROKER_URL == "redis://redis.example.org:6379/0"
    assert module.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] > module.SCORING_TIME_LIMIT
    assert module.SCORING_STUCK_AFTER == 100 + 300
    private = module.STORAGES["private"]
    assert private["BACKEND"] == "storages.backends.s3.S3Storage"
    assert private["OPTIONS"]["bucket_name"] == "egomask-private"
    assert private["OPTIONS"]["endpoint_url"] == "http://s3.example.org:8333"
    assert (private["OPTIONS"]["access_key"], private["OPTIONS"]["secret_key"]) == ("AK", "SK")
    assert private["OPTIONS"]["location"] == "private"
    assert private["OPTIONS"]["default_acl"] is None
    assert private["OPTIONS"]["querystring_auth"] is True
    assert private["OPTIONS"]["file_overwrite"] is False
    assert module.SESSION_COOKIE_SECURE is True
    assert module.CACHES["default"] == {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                        "LOCATION": "redis://redis.example.org:6379/1"}


PRODUCTION = {"DATABASE_URL": "postgres://u@db.example.org:5432/egomask", "SECRET_KEY": "k" * 50,
              "CACHE_URL": "redis://r:6379/1", "SITE_URL": "https://egomask.example.org"}


def test_it_serves_the_embedded_demo_over_plain_http(load_settings):
    module = load_settings()
    for name in ("SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"):
        assert getattr(module, name, False) is False, name
    assert getattr(module, "SECURE_HSTS_SECONDS", 0) == 0


def test_it_switches_https_on_with_production_settings(load_settings):
    module = load_settings(**PRODUCTION)
    assert (module.SESSION_COOKIE_SECURE, module.CSRF_COOKIE_SECURE, module.SECURE_SSL_REDIRECT) == (True, True, True)
    assert (module.SECURE_HSTS_SECONDS, module.SECURE_HSTS_INCLUDE_SUBDOMAINS, module.SECURE_HSTS_PRELOAD) == (
        365 * 24 * 3600, True, False)
    assert module.SILENCED_SYSTEM_CHECKS == ["security.W021"]
    assert not hasattr(module, "SECURE_PROXY_SSL_HEADER")


def test_it_tries_plain_http_with_secure_cookies_off(load_settings):
    module = load_settings(**PRODUCTION, SECURE_COOKIES="false")
    assert (module.SESSION_COOKIE_SECURE, module.SECURE_SSL_REDIRECT, module.SECURE_HSTS_SECONDS) == (False, False, 0)


def test_it_lets_a_lab_behind_a_tls_proxy_choose_each_https_setting(load_settings):
    module = load_settings(**PRODUCTION, BEHIND_PROXY="true", SECURE_SSL_REDIRECT="false", SECURE_HSTS_SECONDS="3600",
                           SECURE_HSTS_INCLUDE_SUBDOMAINS="false", SECURE_HSTS_PRELOAD="true")
    assert module.SECURE_PROXY_SSL_HEADER == ("HTTP_X_FORWARDED_PROTO", "https")
    assert (module.SECURE_SSL_REDIRECT, module.SECURE_HSTS_SECONDS) == (False, 3600)
    assert (module.SECURE_HSTS_INCLUDE_SUBDOMAINS, module.SECURE_HSTS_PRELOAD) == (False, True)
    assert module.SESSION_COOKIE_SECURE is True
    assert not hasattr(module, "SILENCED_SYSTEM_CHECKS")


@pytest.mark.parametrize(("name", "raw"), [("SECURE_SSL_REDIRECT", "maybe"), ("SECURE_HSTS_SECONDS", "1y")])
def test_it_refuses_a_bad_https_setting(load_settings, name, raw):
    with pytest.raises(ImproperlyConfiguredEnv, match=name):
        load_settings(**PRODUCTION, **{name: raw})


def test_it_writes_the_demo_s_mail_to_files_and_sends_production_s_by_smtp(load_settings, tmp_path):
    demo = load_settings()
    assert demo.EMAIL_BACKEND == "django.core.mail.backends.filebased.EmailBackend"
    assert str(tmp_path / "var" / "demo" / "mail") == demo.EMAIL_FILE_PATH
    production = load_settings(DATABASE_URL="postgres://u@db/egomask", SECRET_KEY="k" * 50, CACHE_URL="redis://r/1",
                               SITE_URL="https://egomask.example.org",
                               EMAIL_HOST="smtp.example.org", EMAIL_PORT="587", EMAIL_USE_TLS="yes",
                               DEFAULT_FROM_EMAIL="EgoMask <board@example.org>")
    assert production.EMAIL_BACKEND == "django.core.mail.backends.smtp.EmailBackend"
    assert (production.EMAIL_HOST, production.EMAIL_PORT, production.EMAIL_USE_TLS) == ("smtp.example.org", 587, True)
    assert production.DEFAULT_FROM_EMAIL == "EgoMask <board@example.org>"


def test_it_reads_one_email_url(load_settings):
    module = load_settings(EMAIL_URL="smtp://board%40example.org:p%40ss@mail.example.org:2525?tls=1")
    assert module.EMAIL_BACKEND == "django.core.mail.backends.smtp.EmailBackend"
    assert (module.EMAIL_HOST, module.EMAIL_PORT, module.EMAIL_HOST_USER, module.EMAIL_HOST_PASSWORD,
            module.EMAIL_USE_TLS, module.EMAIL_USE_SSL) == ("mail.example.org", 2525, "board@example.org", "p@ss",
                                                           True, False)
    assert load_settings(EMAIL_URL="smtps://mail.example.org").EMAIL_PORT == 465
    assert load_settings(EMAIL_URL="file:///srv/mail").EMAIL_FILE_PATH == "/srv/mail"
    assert load_settings(EMAIL_URL="console://").EMAIL_BACKEND == "django.core.mail.backends.console.EmailBackend"


@pytest.mark.parametrize(("env", "message"), [
    ({"EMAIL_URL": "imap://mail.example.org"}, "EMAIL_URL='imap://mail.example.org': the scheme must be one of"),
    ({"EMAIL_URL": "smtp://mail.example.org:twentyfive"}, "the port is not a number"),
    ({"EMAIL_URL": "file://"}, "name the folder"),
    ({"EMAIL_PORT": "smtp"}, "EMAIL_PORT='smtp' is not an integer"),
    ({"EMAIL_USE_TLS": "1", "EMAIL_USE_SSL": "1"}, "EMAIL_USE_TLS and EMAIL_USE_SSL are exclusive"),
])
def test_it_refuses_a_bad_mail_setting_by_name(load_settings, env, message):
    with pytest.raises(ImproperlyConfiguredEnv, match=re.escape(message)):
        load_settings(**env)

"""Test settings: the real PostgreSQL and Redis on this machine unless the environment says otherwise.

The temporary directories are per test session, so runs never see each other's files.
"""

import os
import tempfile

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/egomask")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-use-0123456789")
# Production settings require a shared cache; the tests then use a per-process one (below).
os.environ.setdefault("CACHE_URL", "redis://127.0.0.1:6379/9")
os.environ.setdefault("SITE_URL", "http://127.0.0.1:8000")  # required by production settings
if not os.environ.get("EGOMASK_VAR_DIR"):  # worker processes inherit the parent's folder
    os.environ["EGOMASK_VAR_DIR"] = tempfile.mkdtemp(prefix="egomask-test-")

from .settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast tests; never in production
# The test client and the live server speak plain HTTP (the deploy checks run on the real settings).
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
SECURE_SSL_REDIRECT = False
SECURE_HSTS_SECONDS = 0
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "http"  # links in account mails
# Live-server request threads must not keep connections open past the request, or the test
# database cannot be dropped at the end of the session.
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
# One test process (live-server threads included) needs no shared cache, and the tests clear the cache
# between throttle checks: on Redis that would flush a database other test runs may be using.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
          "boards-local": CACHES["boards-local"]}  # noqa: F405
# Worker processes the tests start (pytest-django does this for the test process itself): their mails go
# nowhere rather than to an SMTP server on localhost that is not there, unless a test names a backend.
if not os.environ.get("EMAIL_URL") and not os.environ.get("EMAIL_BACKEND"):
    EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

"""Django settings. No environment: SQLite, storage under ./var, Celery on kombu's filesystem
transport. Environment set: PostgreSQL (DATABASE_URL), Redis (CELERY_BROKER_URL), S3
(S3_BUCKET + S3_ENDPOINT_URL + keys), a shared Redis cache (CACHE_URL). The code path is the same
either way.

Importing this module reads the environment and nothing else: the folders and the embedded secret
key file are made when a process starts (leaderboard/startup.py)."""

from __future__ import annotations

import secrets
from pathlib import Path

import dj_database_url

from .env import (ImproperlyConfiguredEnv, check_base64, email_settings, env_base64, env_bool, env_float, env_int,
                  env_list, env_str)
from .ops.sentry import sentry_init

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("EGOMASK_VAR_DIR") or BASE_DIR / "var")
PRODUCTION = bool(env_str("DATABASE_URL"))

DEBUG = env_bool("DEBUG", False)


def _required_in_production(name: str, why: str) -> str:
    value = env_str(name)
    if not value and PRODUCTION:
        raise ImproperlyConfiguredEnv(f"{name} must be set when DATABASE_URL is (production settings): {why}")
    return value


# Embedded mode: one random key per checkout, kept in this file across restarts (startup.py writes it).
EMBEDDED_SECRET_KEY_FILE = None if env_str("SECRET_KEY") or PRODUCTION else VAR_DIR / "secret_key"
SECRET_KEY = _required_in_production("SECRET_KEY", "it signs sessions and upload links") or (
    EMBEDDED_SECRET_KEY_FILE.read_text().strip() if EMBEDDED_SECRET_KEY_FILE.exists() else secrets.token_urlsafe(50))
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "leaderboard.apps.LeaderboardConfig",  # start-up: the local folders (startup.py)
    "leaderboard.apps.OrganizerAdminConfig",  # django.contrib.admin with our site (adminsite.py)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served from here: the docs page needs no CDN
    "allauth",
    "allauth.account",
    "simple_history",  # the audit log (leaderboard/audit.py)
    "leaderboard.accounts",
    "leaderboard.challenges",
    "leaderboard.submissions",
    "leaderboard.baselines",
    "leaderboard.ops",
    "health_check",  # its check classes and templates (leaderboard/ops/health.py)
    "django_prometheus",
    "leaderboard.notifications",
]

MIDDLEWARE = [
    "leaderboard.ops.middleware.LivenessMiddleware",  # /health/live/ touches nothing (first: not even the metrics)
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",  # the audit log records who made a change
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "leaderboard.outages.OutageMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

# The audit log: reasons are the organizers' own words (any length); history is read, never reverted from the
# admin (a revert would bypass the services and their boards).
SIMPLE_HISTORY_HISTORY_CHANGE_REASON_USE_TEXT_FIELD = True
SIMPLE_HISTORY_REVERT_DISABLED = True

ROOT_URLCONF = "leaderboard.urls"
WSGI_APPLICATION = "leaderboard.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "leaderboard.challenges.context_processors.organizer",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(env_str("DATABASE_URL"), conn_max_age=60, conn_health_checks=True)
    if PRODUCTION
    else {"ENGINE": "django.db.backends.sqlite3", "NAME": VAR_DIR / "db.sqlite3", "OPTIONS": {"timeout": 20}}
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

# Accounts: django-allauth (docs/server.md, "Accounts"). Log in with the user name or the e-mail address;
# signing up sends a verification mail, and a participant's address must be verified before their first
# submission (admission.py): signing in does not wait for it, so a slow mail never locks anyone out.
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",  # the admin and the API's token endpoint (username)
    "allauth.account.auth_backends.AuthenticationBackend",  # username or e-mail, allauth's rate limits
]
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["username*", "email*", "password1*", "password2*"]
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_FORMS = {"login": "leaderboard.accounts.forms.LoginForm"}
ACCOUNT_EMAIL_VERIFICATION = "optional"
ACCOUNT_EMAIL_NOTIFICATIONS = True  # "your password was changed", "an address was added"
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[EgoMask] "
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_LOGOUT_REDIRECT_URL = "home"
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if PRODUCTION and env_bool("SECURE_COOKIES", True) else "http"
SUBMIT_REQUIRES_VERIFIED_EMAIL = env_bool("SUBMIT_REQUIRES_VERIFIED_EMAIL", True)
# allauth's limits (rate/period/per ip|user|key, comma-separated) against guessing passwords, invite codes
# and flooding sign-ups or reset mails. `team_join` is ours (accounts/views.py), kept here with the rest.
ACCOUNT_RATE_LIMITS = {
    "login": env_str("RATE_LIMIT_LOGIN", "30/m/ip"),
    "login_failed": env_str("RATE_LIMIT_LOGIN_FAILED", "10/m/ip,5/5m/key"),
    "signup": env_str("RATE_LIMIT_SIGNUP", "20/m/ip"),
    "reset_password": env_str("RATE_LIMIT_RESET_PASSWORD", "20/m/ip,5/m/key"),
    "team_join": env_str("RATE_LIMIT_TEAM_JOIN", "20/h/user,60/h/ip"),
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"  # made at start-up: whitenoise warns on every request when it is missing
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = VAR_DIR / "media"
MEDIA_URL = "media/"

# Private storage: uploads, ground truth, per-expression results. Never under MEDIA_URL.
S3_BUCKET = env_str("S3_BUCKET")
if S3_BUCKET:
    PRIVATE_STORAGE = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": S3_BUCKET,
            "endpoint_url": env_str("S3_ENDPOINT_URL") or None,
            "access_key": env_str("S3_ACCESS_KEY_ID") or None,
            "secret_key": env_str("S3_SECRET_ACCESS_KEY") or None,
            "region_name": env_str("S3_REGION") or None,
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": False,
            "location": env_str("S3_PREFIX", "private"),
            "addressing_style": env_str("S3_ADDRESSING_STYLE", "path"),
        },
    }
else:
    PRIVATE_STORAGE = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": env_str("PRIVATE_STORAGE_DIR") or str(VAR_DIR / "private"), "base_url": None},
    }
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "private": PRIVATE_STORAGE,
}

# Celery. Without CELERY_BROKER_URL a real worker runs on kombu's filesystem transport.
_BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or "filesystem://"
if CELERY_BROKER_URL.startswith("filesystem://"):
    # kombu makes none of these folders: startup.py does, in every process.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_BROKER_DIR / "queue"),
        "data_folder_out": str(_BROKER_DIR / "queue"),
        "processed_folder": str(_BROKER_DIR / "processed"),
        "control_folder": str(_BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    # Redis redelivers an unacknowledged task after this long; keep it above the hard limit.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 7200)}
CELERY_TASK_DEFAULT_QUEUE = "scoring"
# Routed by name, each name a task that exists (a test checks it). Scoring is CPU work on `scoring`; a
# reference runner's shards go to `gpu` when the run uses a GPU, to `scoring` when it runs on the CPU
# (the weight-free baselines), and the assembly of a run's shards is CPU work. The reconciler and the
# clean-up have `maintenance` to themselves, so a busy scoring queue never delays a recovery.
CELERY_TASK_ROUTES = {
    "leaderboard.submissions.tasks.score_submission": {"queue": "scoring"},
    "leaderboard.submissions.tasks.reconcile_submissions": {"queue": "maintenance"},
    "leaderboard.submissions.tasks.clean_up_uploads": {"queue": "maintenance"},
    "leaderboard.submissions.tasks.snapshot_boards": {"queue": "maintenance"},
    "leaderboard.challenges.tasks.check_ground_truth": {"queue": "scoring"},
    "leaderboard.baselines.tasks.run_gpu_shard": {"queue": "gpu"},
    "leaderboard.baselines.tasks.run_cpu_shard": {"queue": "scoring"},
    "leaderboard.baselines.tasks.assemble_run": {"queue": "scoring"},
    "leaderboard.notifications.tasks.send_submission_mail": {"queue": "maintenance"},
    "leaderboard.notifications.tasks.send_announcement": {"queue": "maintenance"},
    "leaderboard.notifications.tasks.retry_mail": {"queue": "maintenance"},
    "celery.chord_unlock": {"queue": "scoring"},  # polls a run's shards where the backend cannot count them
}
# A baseline run's shards form a chord, which needs a result backend; nothing else stores results
# (CELERY_TASK_IGNORE_RESULT). Redis counts a chord's parts itself: the broker's Redis by default.
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND") or (
    f"file://{VAR_DIR / 'results'}" if CELERY_BROKER_URL.startswith("filesystem://") else CELERY_BROKER_URL)
CELERY_RESULT_EXPIRES = env_int("CELERY_RESULT_EXPIRES", 7 * 24 * 3600)  # a run's shards may take days
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A request that saved a submission sends its task and answers; with the broker down it gives up within
# a second or two (the reconciler sends it later) instead of holding the request.
CELERY_BROKER_CONNECTION_TIMEOUT = env_int("CELERY_BROKER_CONNECTION_TIMEOUT", 2)
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.25,
                                    "interval_max": 0.5}
SCORING_SOFT_TIME_LIMIT = env_int("SCORING_SOFT_TIME_LIMIT", 1200)
SCORING_TIME_LIMIT = env_int("SCORING_TIME_LIMIT", 1500)
# A scoring worker holds a lease on what it scores and renews it every quarter of this; when a lease
# runs out (its worker was killed) the attempt is taken over by a redelivered task or the reconciler.
SCORING_LEASE_SECONDS = env_int("SCORING_LEASE_SECONDS", 10)
# A claimed submission without a lease (claimed before leases existed) counts as stuck after this long.
SCORING_STUCK_AFTER = env_int("SCORING_STUCK_AFTER", SCORING_TIME_LIMIT + 300)
RECONCILE_EVERY = env_int("RECONCILE_EVERY", 5)
# The organizer dashboard (submissions/dashboard.py): a submission waiting for a worker this many times the
# median wait (and at least the seconds) is stuck; one whose scoring took longer than its phase's 95th
# percentile, or than DASHBOARD_SLOW_SECONDS (0: only the percentile), is slow.
DASHBOARD_STUCK_FACTOR = env_int("DASHBOARD_STUCK_FACTOR", 10)
DASHBOARD_STUCK_WAIT_SECONDS = env_int("DASHBOARD_STUCK_WAIT_SECONDS", 900)
DASHBOARD_SLOW_SECONDS = env_int("DASHBOARD_SLOW_SECONDS", 600)
CELERY_BEAT_SCHEDULE = {
    "reconcile-submissions": {
        "task": "leaderboard.submissions.tasks.reconcile_submissions",
        "schedule": RECONCILE_EVERY,
        "options": {"expires": RECONCILE_EVERY},  # one not run in time is dropped: the next one comes
    },
    "clean-up-uploads": {
        "task": "leaderboard.submissions.tasks.clean_up_uploads",
        "schedule": env_int("UPLOAD_CLEANUP_EVERY", 3600),
        "options": {"expires": 600},
    },
    # A board snapshot (submissions/snapshots.py) when a private board is revealed or a phase ends.
    "snapshot-boards": {
        "task": "leaderboard.submissions.tasks.snapshot_boards",
        "schedule": env_int("BOARD_SNAPSHOT_EVERY", 300),
        "options": {"expires": 300},
    },
}

# Operations (leaderboard/ops/, docs/operations.md). Every worker writes a heartbeat this often; one not seen for
# WORKER_HEARTBEAT_STALE_AFTER seconds is gone. A required queue without a live consumer fails /health/.
WORKER_HEARTBEAT_EVERY = env_int("WORKER_HEARTBEAT_EVERY", 10)
WORKER_HEARTBEAT_STALE_AFTER = env_int("WORKER_HEARTBEAT_STALE_AFTER", 3 * WORKER_HEARTBEAT_EVERY)
HEALTH_REQUIRED_QUEUES = env_list("HEALTH_REQUIRED_QUEUES", ["scoring", "maintenance"])
# /metrics answers `Authorization: Bearer <METRICS_TOKEN>` only, and does not exist while it is unset.
METRICS_TOKEN = env_str("METRICS_TOKEN")
# Error reports to Sentry, only when SENTRY_DSN is set (never personal data: leaderboard/ops/sentry.py).
SENTRY_DSN = env_str("SENTRY_DSN")
SENTRY_ENVIRONMENT = env_str("SENTRY_ENVIRONMENT", "production" if PRODUCTION else "development")
SENTRY_TRACES_SAMPLE_RATE = env_float("SENTRY_TRACES_SAMPLE_RATE", 0.0)
SENTRY_ENABLED = sentry_init(dsn=SENTRY_DSN, environment=SENTRY_ENVIRONMENT,
                             traces_sample_rate=SENTRY_TRACES_SAMPLE_RATE, release=env_str("SENTRY_RELEASE"))
# E-mail: SMTP in production (EMAIL_HOST...), Django's file backend in the embedded demo, so that the
# verification and password-reset mails can be read in var/demo/mail. EMAIL_URL sets it all in one
# (smtp://user:password@host:587?tls=1, file:///path, console://); EMAIL_BACKEND names a backend outright.
EMAIL_FILE_PATH = str(VAR_DIR / "demo" / "mail")
_email = email_settings(default_backend="django.core.mail.backends.smtp.EmailBackend" if PRODUCTION
                        else "django.core.mail.backends.filebased.EmailBackend", file_path=EMAIL_FILE_PATH)
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email["EMAIL_HOST"]
EMAIL_PORT = _email["EMAIL_PORT"]
EMAIL_HOST_USER = _email["EMAIL_HOST_USER"]
EMAIL_HOST_PASSWORD = _email["EMAIL_HOST_PASSWORD"]
EMAIL_USE_TLS = _email["EMAIL_USE_TLS"]
EMAIL_USE_SSL = _email["EMAIL_USE_SSL"]
EMAIL_FILE_PATH = _email["EMAIL_FILE_PATH"]
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "EgoMask leaderboard <noreply@localhost>")
SERVER_EMAIL = env_str("SERVER_EMAIL", DEFAULT_FROM_EMAIL)
# The site's address for links in mails sent by workers (no request to build them from).
SITE_URL = (_required_in_production("SITE_URL", "mails, receipts and admission messages link to it (e.g. "
                                    "https://egomask.example.org)") or "http://127.0.0.1:8000").rstrip("/")
# Score receipts (submissions/receipts.py) are signed with this Ed25519 key: base64 of its 32-byte seed
# (`manage.py receipt_key --new` prints a new one). Unset, the key is derived from SECRET_KEY
# (HKDF-SHA256), so a one-command install signs too, and rotating SECRET_KEY then rotates it. The public keys
# of earlier keys (base64, comma-separated) are published beside the current one: their receipts still verify.
RECEIPT_SIGNING_KEY = env_base64("RECEIPT_SIGNING_KEY", size=32)
RECEIPT_PREVIOUS_PUBLIC_KEYS = env_list("RECEIPT_PREVIOUS_PUBLIC_KEYS", [])
for _key in RECEIPT_PREVIOUS_PUBLIC_KEYS:
    check_base64("RECEIPT_PREVIOUS_PUBLIC_KEYS", _key, size=32)
# A mail that the server refused (or whose task was lost) is sent by a sweep every MAIL_RETRY_SECONDS, for
# MAIL_RETRY_WINDOW seconds after the submission ended or the announcement was queued.
MAIL_RETRY_SECONDS = env_int("MAIL_RETRY_SECONDS", 60)
MAIL_RETRY_WINDOW = env_int("MAIL_RETRY_WINDOW", 24 * 3600)
CELERY_BEAT_SCHEDULE["retry-mail"] = {"task": "leaderboard.notifications.tasks.retry_mail",
                                      "schedule": MAIL_RETRY_SECONDS, "options": {"expires": MAIL_RETRY_SECONDS}}

SUBMISSION_MAX_BYTES = env_int("SUBMISSION_MAX_BYTES", 2 * 1024**3)
# The same file from the same team to the same phase within this long is a retried upload (a lost answer),
# answered with the earlier submission instead of a second one.
SUBMISSION_REPEAT_SECONDS = env_int("SUBMISSION_REPEAT_SECONDS", 600)
# The web form sends a file larger than this in parts of this size (two-step upload, as the CLI does);
# at least 5 MiB when private storage is S3 (its smallest part but the last).
UPLOAD_PART_BYTES = env_int("UPLOAD_PART_BYTES", 16 * 1024**2)
GROUND_TRUTH_CACHE_DIR = Path(env_str("GROUND_TRUTH_CACHE_DIR") or VAR_DIR / "gt-cache")
# Reference runners (baselines app): the frames (`JPEGImages/<clip>/<frame>.jpg`), the weights
# (`<dir>/<runner>/`, unless a run names its own folder) and the shards' work folders
# (`<dir>/<run id>/shard-<i>/`). Every worker that runs shards must see the same frames and weights;
# the work folder must be one volume shared by all of them (a redelivered shard resumes from it on
# any worker, and the assembly reads every shard's folder).
BASELINE_FRAMES_DIR = Path(env_str("BASELINE_FRAMES_DIR") or VAR_DIR / "frames")
BASELINE_WEIGHTS_DIR = Path(env_str("BASELINE_WEIGHTS_DIR") or VAR_DIR / "weights")
BASELINE_WORK_DIR = Path(env_str("BASELINE_WORK_DIR") or VAR_DIR / "baseline-runs")
BASELINE_PROGRESS_EVERY = env_int("BASELINE_PROGRESS_EVERY", 5)  # seconds between progress writes (the lease)
BASELINE_LEASE_SECONDS = env_int("BASELINE_LEASE_SECONDS", 300)  # a shard whose worker is silent this long is free
# A shard stops at the soft limit and continues, resumed, in a new task: keep the hard limit below the
# Redis visibility timeout so a running shard is never redelivered to a second worker.
BASELINE_SHARD_SOFT_TIME_LIMIT = env_int("BASELINE_SHARD_SOFT_TIME_LIMIT", 6600)
BASELINE_SHARD_TIME_LIMIT = env_int("BASELINE_SHARD_TIME_LIMIT", 6900)
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024**2

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "leaderboard.api_auth.TokenOrBearerAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "leaderboard.api_support.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {
        "token": env_str("THROTTLE_TOKEN", "10/min"),
        "submit": env_str("THROTTLE_SUBMIT", "60/hour"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "EgoMask leaderboard API",
    "DESCRIPTION": "Submit predictions, follow their scoring, read leaderboards. Get a token with "
    "POST /api/v1/auth/token/ (or on the web site's API token page) and send it as "
    "`Authorization: Token <token>` (`Bearer <token>` works too). Errors are always "
    '{"error": "...", "detail": {...}}.',
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "PREPROCESSING_HOOKS": ["leaderboard.api_v1.schema_endpoints"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Throttle counters and the evalai upload messages must be shared by every web process: Redis, required in
# production. The embedded demo (one web process) keeps them in memory.
CACHE_URL = _required_in_production("CACHE_URL", "throttles and upload messages must be shared by every web "
                                    "process (e.g. redis://redis:6379/1)")
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
    if CACHE_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    # Each process's copies of the boards it served last (keyed by board version: never stale).
    "boards-local": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "boards",
                     "OPTIONS": {"MAX_ENTRIES": 64}},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.server": {"level": "WARNING"}},
}

# Behind a TLS-terminating proxy: trust its X-Forwarded-Proto/-Host so absolute URLs (upload part
# URLs, links in API answers) come out as https://public-host/.
if env_bool("BEHIND_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = True

# HTTPS, with production settings (`manage.py check --deploy` is clean on the defaults). The embedded demo
# (no DATABASE_URL) serves plain http://127.0.0.1 and sets none of this. SECURE_COOKIES=false tries the stack
# over plain HTTP on another host: no secure cookies and, unless said otherwise, no redirect and no HSTS.
# Behind a TLS-terminating proxy set BEHIND_PROXY (above) so that Django knows a request came over HTTPS,
# or SECURE_SSL_REDIRECT=false when the proxy does the redirect and sends no X-Forwarded-Proto.
# The full health check is probed from inside the stack over plain HTTP too (liveness never redirects: its
# middleware answers before SecurityMiddleware).
SECURE_REDIRECT_EXEMPT = [r"^health/"]
if not DEBUG and PRODUCTION:
    _https = env_bool("SECURE_COOKIES", True)
    SESSION_COOKIE_SECURE = _https
    CSRF_COOKIE_SECURE = _https
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", _https)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600 if _https else 0)
    # The site's own host names (HSTS never reaches a parent domain): on unless a subdomain is plain HTTP.
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    # Preloading asks browsers to hard-code HTTPS for the whole registrable domain, which is the domain
    # owner's decision (a lab's host is usually a university's subdomain): off unless asked for, and then
    # Django's reminder (security.W021) says nothing the operator has not decided.
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
    if not SECURE_HSTS_PRELOAD:
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
# Django's defaults, written down because the deploy checks and the tests rely on them.
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True

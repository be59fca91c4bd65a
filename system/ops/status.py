"""The system status object (GET /api/v1/system/status and the admin dashboard) and the
configuration summary (GET /api/v1/system/config).

Status: real probes of every part, run concurrently with PROBE_TIMEOUT seconds each
(system.ops.probes), plus live metrics. The object is computed at most once per
STATUS_BUCKET_SECONDS-second bucket for the whole cluster (kept in the Django cache under the
bucket's number), and its ETag version is the bucket too, so a client polling every few seconds
costs one cache read or a 304.

Two inputs are written elsewhere, both to Redis: worker heartbeats (system.ops.heartbeat) and
per-minute request counters (system.ops.counters).
"""

import contextlib
import os
import time
from collections.abc import Callable
from typing import Any

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError
from django.utils import timezone

import config
from agents.runtime import get_router
from agents.selectors import agents_running_count
from sessions_app.selectors import sessions_active_count
from system.kernel.policy import get_policy
from system.kernel.ratelimit import WINDOW_SECONDS
from system.kernel.redis_client import get_redis
from system.kernel.reload import config_version
from system.kernel.timefmt import iso_z
from system.ops.counters import request_rates
from system.ops.heartbeat import heartbeat_fresh_seconds, worker_heartbeats
from system.ops.probes import ProbeResult, database_ping, probes_run, redis_ping

OPERATIONAL, DEGRADED, UNAVAILABLE = "operational", "degraded", "unavailable"
HEALTHY, UNHEALTHY = "healthy", "unhealthy"

PROBE_TIMEOUT = 1.0
STATUS_BUCKET_SECONDS = 10


# --- Probes: each returns None (operational) or its state and details ------------------------


def _cache() -> dict[str, Any] | None:
    """PING on the cache's primary (write) server; other backends get a set/get round trip."""
    config_ = settings.CACHES["default"]
    if config_["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
        location = config_["LOCATION"]
        servers = location.split(",") if isinstance(location, str) else list(location)
        redis_ping(servers[0], timeout=PROBE_TIMEOUT)
        return None
    cache.set("system-status-probe", 1, timeout=5)
    return {"state": OPERATIONAL if cache.get("system-status-probe") == 1 else DEGRADED}


def _message_broker() -> None:
    url = settings.CELERY_BROKER_URL
    if url.split(":", 1)[0] in {"redis", "rediss", "unix"}:
        redis_ping(url, timeout=PROBE_TIMEOUT)
        return None
    with config.celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=PROBE_TIMEOUT)
    return None


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


PROBES: dict[str, Callable[[], dict[str, Any] | None]] = {
    "database": database_ping,
    "cache": _cache,
    "message_broker": _message_broker,
    "agent_orchestrator": _agent_orchestrator,
}


def _service(result: ProbeResult) -> dict[str, Any]:
    if not result.ok:
        return {"state": UNAVAILABLE, "error": result.error, "latency_ms": result.latency_ms}
    return {"state": OPERATIONAL, **(result.value or {}), "latency_ms": result.latency_ms}


def services_probe(timeout: float = PROBE_TIMEOUT) -> dict[str, dict[str, Any]]:
    """Every probe, concurrently; each reports `state` and `latency_ms`, plus `error` (an
    exception class name or a short reason, never a URL) when it is not operational."""
    results = {
        name: _service(result) for name, result in probes_run(PROBES, timeout=timeout).items()
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
    probes = services_probe()
    services = {
        name: probes[name]["state"]
        for name in ("api_gateway", "agent_orchestrator", "message_broker", "database", "cache")
    }
    database_up = services["database"] == OPERATIONAL
    rates = request_rates()
    metrics = {
        # Counted only when the probe found the database answering: a hung database must not
        # hold the status request for the length of a connect timeout.
        "active_agents": _count(agents_running_count) if database_up else None,
        "active_sessions": _count(sessions_active_count) if database_up else None,
        "requests_per_minute": rates[0] if rates else None,
        "error_rate": rates[1] if rates else None,
        "system_load": system_load(),
    }
    details = {
        name: {k: v for k, v in probe.items() if k != "state"} for name, probe in probes.items()
    }
    return {
        "status": overall_status(services),
        "timestamp": iso_z(timezone.now()),
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
    policy = get_policy()
    providers = get_router().health()
    return {
        "version": config.__version__,
        "environment": settings.ENVIRONMENT,
        "config_version": config_version(),
        # The spec's `llm_providers` is a list of names; the health details sit beside it.
        "llm_providers": [provider["name"] for provider in providers],
        "llm_provider_status": providers,
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

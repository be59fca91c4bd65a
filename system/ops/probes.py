"""Health probes with hard time limits, run concurrently so one hung part cannot stall the rest.

One runner and one thread pool serve /readyz (the database and Redis, `readiness_probes_run`)
and the status API (system.ops.status: database, cache, broker, workers). A probe is a callable
that raises when its part does not answer; what it returns is passed through as `value`.
"""

import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings
from django.db import connections

from system.kernel.redis_client import get_redis

# Sized for a status computation (four probes) and a readiness check (two) at once, twice
# over: a probe may hang up to its own socket timeout, holding its thread after its caller
# has given up on it, and must not leave the next caller's probes waiting for a thread.
_executor = ThreadPoolExecutor(max_workers=12, thread_name_prefix="probe")


@dataclass(frozen=True)
class ProbeResult:
    name: str
    ok: bool  # the probe returned (rather than raised or timed out)
    latency_ms: float  # the probe's own, not the wait for the others
    error: str = ""  # an exception class name or "no answer within …", never a URL
    value: Any = None  # what the probe returned


def database_ping() -> None:
    # Runs in a pool thread, which has its own connection: close it so that none lingers
    # (under ASGI that returns it to psycopg's pool). /readyz probes at most once a second.
    conn = connections["default"]
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        conn.close()


def database_ping_here(*, timeout: float) -> None:
    """SELECT 1 on the calling thread's own connection: the one its requests use and keep
    (CONN_MAX_AGE; under ASGI psycopg's pool), so a probe costs a query, not a connection.
    A query that has not answered within `timeout` is cancelled from a timer thread
    (psycopg's `cancel()` and sqlite3's `interrupt()` are made to be called from another
    thread), which fails the probe; connecting is bounded by the connection's own timeout."""
    conn = connections["default"]
    conn.ensure_connection()  # a broken one was replaced at request start (health checks)
    raw = conn.connection
    cancel = raw.cancel if conn.vendor == "postgresql" else raw.interrupt
    answered = threading.Event()

    def stop() -> None:
        # A cancel that races the answer finds nothing running and has no effect (both
        # drivers' documented behaviour); checking first makes the race rarer still.
        if not answered.is_set():
            cancel()

    timer = threading.Timer(timeout, stop)
    timer.daemon = True
    timer.start()
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        answered.set()
        timer.cancel()


def redis_ping(url: str, *, timeout: float) -> None:
    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        client.ping()
    finally:
        client.close()


def _timed(name: str, probe: Callable[[], Any]) -> ProbeResult:
    started = time.perf_counter()
    try:
        value, error = probe(), ""
    except Exception as exc:  # noqa: BLE001 - any failure means "not answering"
        value, error = None, type(exc).__name__
    latency_ms = round((time.perf_counter() - started) * 1000, 1)
    return ProbeResult(name, not error, latency_ms, error, value)


def _collect(
    futures: Mapping[str, Future], *, started: float, timeout: float
) -> dict[str, ProbeResult]:
    results: dict[str, ProbeResult] = {}
    for name, future in futures.items():
        remaining = max(0.0, timeout - (time.perf_counter() - started))
        try:
            results[name] = future.result(timeout=remaining)
        except FutureTimeout:
            results[name] = ProbeResult(
                name, False, round(timeout * 1000, 1), f"no answer within {timeout:g}s"
            )
    return results


def probes_run(
    probes: Mapping[str, Callable[[], Any]], *, timeout: float
) -> dict[str, ProbeResult]:
    """Run every probe concurrently; together they have `timeout` seconds to answer, and one
    that has not answered by then is reported as failed (its thread finishes on its own)."""
    started = time.perf_counter()
    futures = {name: _executor.submit(_timed, name, probe) for name, probe in probes.items()}
    return _collect(futures, started=started, timeout=timeout)


_readiness_lock = threading.Lock()
_readiness_last: tuple[float, list[ProbeResult]] | None = None


def readiness_cache_clear() -> None:
    global _readiness_last
    with _readiness_lock:
        _readiness_last = None


def readiness_probes_run(timeout: float = 1.0) -> list[ProbeResult]:
    """Probe the database and Redis concurrently; each has `timeout` seconds to answer. The
    database is probed on the calling thread's connection (`database_ping_here`), Redis with
    the shared client, in a pool thread meanwhile: no probe opens a connection.

    A result is reused for READINESS_CACHE_SECONDS (1 s): load balancers and a burst of
    callers cost one probe per second per process, the others waiting on the lock for it."""
    global _readiness_last
    max_age = getattr(settings, "READINESS_CACHE_SECONDS", 1.0)
    with _readiness_lock:
        if _readiness_last is not None and time.monotonic() - _readiness_last[0] < max_age:
            return _readiness_last[1]
        started = time.perf_counter()
        redis_probe = _executor.submit(_timed, "redis", lambda: get_redis().ping())
        database = _timed("database", lambda: database_ping_here(timeout=timeout))
        redis_result = _collect({"redis": redis_probe}, started=started, timeout=timeout)
        results = [database, *redis_result.values()]
        _readiness_last = (time.monotonic(), results)
        return results

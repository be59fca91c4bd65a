"""Health probes with hard time limits, run concurrently so one hung part cannot stall the rest.

Used by /readyz now and by the system status endpoint later.
"""

import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import connections

_executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="probe")


@dataclass(frozen=True)
class ProbeResult:
    name: str
    ok: bool
    latency_ms: float
    error: str = ""


def _database() -> None:
    # Runs in a pool thread, which has its own connection: close it so none lingers.
    conn = connections["default"]
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        conn.close()


def _redis(timeout: float) -> None:
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=timeout, socket_connect_timeout=timeout
    )
    try:
        client.ping()
    finally:
        client.close()


def run_probes(timeout: float = 1.0) -> list[ProbeResult]:
    """Probe the database and Redis concurrently; each has `timeout` seconds to answer."""
    checks = {"database": _database, "redis": lambda: _redis(timeout)}
    started = time.perf_counter()
    futures = {name: _executor.submit(check) for name, check in checks.items()}
    results = []
    for name, future in futures.items():
        remaining = max(0.0, timeout - (time.perf_counter() - started))
        try:
            future.result(timeout=remaining)
            error = ""
        except FutureTimeout:
            error = f"no answer within {timeout:g}s"
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
            error = type(exc).__name__
        results.append(
            ProbeResult(name, not error, round((time.perf_counter() - started) * 1000, 1), error)
        )
    return results

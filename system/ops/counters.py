"""Per-minute request counters for the status API's `requests_per_minute` and `error_rate`.

`371os:reqstats:<minute>` holds `requests` and `errors` (5xx). The rate limiter counts a
request in its own round trip (system.kernel.ratelimit); RequestCountersMiddleware writes only
for requests it did not count, and for a 5xx. The status reads the last full minute; the admin
dashboard draws the last hour or day (the keys live REQUEST_STATS_TTL, 25 h).

A failed request (`api_error`, see RequestCountersMiddleware) also goes into the capped list
`371os:api-errors` (LPUSH + LTRIM to API_ERRORS_KEPT) in the same pipelined round trip, so
requests that succeed cost nothing more.
"""

import json
import logging
import time

import redis

from system.kernel.ratelimit import REQUEST_STATS_TTL, WINDOW_SECONDS, request_stats_key
from system.kernel.redis_client import get_redis

logger = logging.getLogger(__name__)

_last_counter_warning = 0.0

API_ERRORS_KEY = "371os:api-errors"
API_ERRORS_KEPT = 50


def _minute(now: float) -> int:
    return int(now // WINDOW_SECONDS) * WINDOW_SECONDS


def request_counted(
    *,
    status_code: int,
    counted: bool = False,
    now: float | None = None,
    api_error: dict | None = None,
) -> None:
    """Count one finished request (and a 5xx as an error) in the current minute: one
    pipelined round trip, no database write; none at all for a request the rate limiter
    already `counted` (its round trip carried the count) unless it failed with a 5xx or
    brings an `api_error` to record. Never raises: Redis down loses the count."""
    global _last_counter_warning
    if counted and status_code < 500 and api_error is None:
        return
    now = time.time() if now is None else now
    key = request_stats_key(_minute(now))
    try:
        pipe = get_redis().pipeline(transaction=False)
        if not counted:
            pipe.hincrby(key, "requests", 1)
        if status_code >= 500:
            pipe.hincrby(key, "errors", 1)
        if not counted or status_code >= 500:
            pipe.expire(key, REQUEST_STATS_TTL)
        if api_error is not None:
            pipe.lpush(API_ERRORS_KEY, json.dumps({**api_error, "at": now}))
            pipe.ltrim(API_ERRORS_KEY, 0, API_ERRORS_KEPT - 1)
        pipe.execute()
    except redis.RedisError as exc:
        if time.monotonic() - _last_counter_warning >= 60:
            _last_counter_warning = time.monotonic()
            logger.warning("request counters not written, Redis unreachable (%s)", type(exc))


def request_rates(*, now: float | None = None) -> tuple[int, float] | None:
    """(requests, 5xx share) of the last full minute; None when Redis cannot be reached."""
    key = request_stats_key(_minute(time.time() if now is None else now) - WINDOW_SECONDS)
    try:
        requests_raw, errors_raw = get_redis().hmget(key, ["requests", "errors"])
    except redis.RedisError:
        return None
    requests = int(requests_raw or 0)
    errors = int(errors_raw or 0)
    return requests, round(errors / requests, 4) if requests else 0.0


def api_errors_recent() -> list[dict] | None:
    """The last API_ERRORS_KEPT recorded failures, newest first; None when Redis is away."""
    try:
        raw = get_redis().lrange(API_ERRORS_KEY, 0, API_ERRORS_KEPT - 1)
    except redis.RedisError:
        return None
    errors = []
    for item in raw:
        try:
            errors.append(json.loads(item))
        except ValueError:
            continue
    return errors


def request_series(*, starts: list[int]) -> list[tuple[int, int]] | None:
    """(requests, 5xx) of each minute starting at `starts` (Unix times, whole minutes): one
    pipelined round trip; None when Redis is away."""
    try:
        pipe = get_redis().pipeline(transaction=False)
        for start in starts:
            pipe.hmget(request_stats_key(start), ["requests", "errors"])
        rows = pipe.execute()
    except redis.RedisError:
        return None
    return [(int(r or 0), int(e or 0)) for r, e in rows]

"""Atomic per-minute rate limits in Redis.

One round trip per request: a Lua script INCRs the current minute's counter (setting its expiry
with the first hit) and the status API's request counter of the minute. INCR is atomic, so
under any concurrency exactly `limit` requests of a window see a count within the limit. If
Redis is unreachable requests are served (fail open), no headers are sent, and a warning is
logged at most once a minute; limits that guard credentials (logins) ask for `fail_closed`
instead, and are refused while the counters cannot be kept.
"""

import logging
import time
from dataclasses import dataclass

import redis

from system.kernel.exceptions import DomainError
from system.kernel.redis_client import get_redis

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60
# The status API's per-minute request counters (system.ops.counters reads them), kept for a
# day and an hour: the admin dashboard draws requests per minute over the last day (1,440
# small hashes).
REQUEST_STATS_PREFIX = "371os:reqstats:"
REQUEST_STATS_TTL = 25 * 3600
_HIT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
if KEYS[2] and redis.call('HINCRBY', KEYS[2], 'requests', 1) == 1 then
  redis.call('EXPIRE', KEYS[2], ARGV[2])
end
return count
"""
_scripts: dict[int, redis.commands.core.Script] = {}
# Retry-After of a fail-closed limit while Redis is unreachable.
UNAVAILABLE_RETRY_SECONDS = 10
_last_warning = 0.0


@dataclass(frozen=True)
class RateLimitState:
    limit: int
    remaining: int
    reset: int  # Unix time at which the window ends

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }


class RateLimitExceeded(DomainError):
    code = "rate_limit_exceeded"
    http_status = 429
    message = "Rate limit exceeded; retry after the window resets."


def request_stats_key(window: int) -> str:
    return f"{REQUEST_STATS_PREFIX}{window}"


def _hit_script():
    client = get_redis()
    script = _scripts.get(id(client))
    if script is None:
        script = _scripts[id(client)] = client.register_script(_HIT)
    return script


def _warn_once_a_minute(exc: Exception) -> None:
    global _last_warning
    now = time.monotonic()
    if now - _last_warning >= 60:
        _last_warning = now
        logger.warning("rate limiting disabled, Redis unreachable (%s)", type(exc).__name__)


def rate_limit_hit(
    bucket: str, limit: int, *, fail_closed: bool = False, count_request: bool = False
) -> RateLimitState | None:
    """Count one request against `bucket` (and, with `count_request`, in the status API's
    per-minute request total: same round trip); None when Redis cannot be reached.

    Raises RateLimitExceeded (with Retry-After) once the window's count passes `limit`, and,
    with `fail_closed`, while Redis cannot be reached.
    """
    now = time.time()
    window = int(now // WINDOW_SECONDS) * WINDOW_SECONDS
    reset = window + WINDOW_SECONDS
    keys = [f"371os:rl:{bucket}:{window}"]
    if count_request:
        keys.append(request_stats_key(window))
    try:
        count = _hit_script()(keys=keys, args=[WINDOW_SECONDS + 1, REQUEST_STATS_TTL])
    except redis.RedisError as exc:
        _warn_once_a_minute(exc)
        if fail_closed:
            error = RateLimitExceeded(
                "Too many attempts cannot be ruled out right now; retry shortly.",
                details={"limit": limit, "reason": "rate_limiter_unavailable"},
            )
            error.headers = {"Retry-After": str(UNAVAILABLE_RETRY_SECONDS)}
            error.rate_limit = None
            raise error from None
        return None
    state = RateLimitState(limit=limit, remaining=max(0, limit - count), reset=reset)
    if count > limit:
        error = RateLimitExceeded(details={"limit": limit, "remaining": 0, "reset": reset})
        error.headers = {"Retry-After": str(max(1, int(reset - now + 0.999)))}
        error.rate_limit = state
        raise error
    return state

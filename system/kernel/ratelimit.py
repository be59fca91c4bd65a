"""Atomic per-minute rate limits in Redis.

One round trip per request: INCR and EXPIRE of the current minute's counter inside MULTI/EXEC.
INCR is atomic, so under any concurrency exactly `limit` requests of a window see a count
within the limit. If Redis is unreachable requests are served (fail open), no headers are
sent, and a warning is logged at most once a minute; limits that guard credentials (logins)
ask for `fail_closed` instead, and are refused while the counters cannot be kept.
"""

import logging
import time
from dataclasses import dataclass

import redis

from system.kernel.exceptions import DomainError
from system.kernel.redis_client import get_redis

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 60
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


def _warn_once_a_minute(exc: Exception) -> None:
    global _last_warning
    now = time.monotonic()
    if now - _last_warning >= 60:
        _last_warning = now
        logger.warning("rate limiting disabled, Redis unreachable (%s)", type(exc).__name__)


def rate_limit_hit(bucket: str, limit: int, *, fail_closed: bool = False) -> RateLimitState | None:
    """Count one request against `bucket`; None when Redis cannot be reached.

    Raises RateLimitExceeded (with Retry-After) once the window's count passes `limit`, and,
    with `fail_closed`, while Redis cannot be reached.
    """
    now = time.time()
    window = int(now // WINDOW_SECONDS) * WINDOW_SECONDS
    reset = window + WINDOW_SECONDS
    key = f"371os:rl:{bucket}:{window}"
    try:
        pipe = get_redis().pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, WINDOW_SECONDS + 1)
        count = pipe.execute()[0]
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

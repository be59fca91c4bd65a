"""Limits on sockets that have not authenticated, per client address, across ws processes.

- A failed authentication counts against the address's anonymous bucket, the one REST's failed
  authentications count against (system.kernel.permissions.failed_authentication_bucket);
  past its limit the socket is closed with 4429 and says when to retry.
- An address holds at most WS_MAX_UNAUTHENTICATED_PER_IP sockets waiting to authenticate
  (opened without credentials, to send the `auth` command); one more is closed with 1008.
  Sockets with credentials in the handshake are authenticated at once and never wait, so they
  cost no count. The count lives in Redis, so it holds across ws processes; a socket leaves it
  once it authenticates or closes, and a count left behind by a killed process expires
  shortly after the authentication timeout.

The address is the REST rule's (system.kernel.principal.client_address) applied to the ASGI
scope: the peer, or with TRUSTED_PROXY_COUNT the address the outermost trusted proxy saw.
Like REST's rate limits these fail open while Redis is unreachable: authentication itself needs
no Redis, and a token is not a password to guess.
"""

import contextlib
import logging
from typing import Any

import redis
from asgiref.sync import sync_to_async
from django.conf import settings

from system.kernel.permissions import failed_authentication_bucket
from system.kernel.principal import client_address
from system.kernel.ratelimit import RateLimitExceeded, rate_limit_hit
from system.kernel.redis_client import get_redis

logger = logging.getLogger(__name__)

CLOSE_TOO_MANY_FAILURES = 4429
CLOSE_POLICY_VIOLATION = 1008
# Under the rate-limit prefix, which tests clear between runs, like every other counter.
_PENDING_KEY = "371os:rl:ws-unauthenticated:{ip}"
_RELEASE = """
local n = redis.call('DECR', KEYS[1])
if n <= 0 then redis.call('DEL', KEYS[1]) end
return n
"""


def scope_client_ip(scope: dict[str, Any]) -> str:
    peer = (scope.get("client") or ("",))[0] or ""
    forwarded = ", ".join(
        value.decode("latin-1")
        for name, value in scope.get("headers", [])
        if name.lower() == b"x-forwarded-for"
    )
    return client_address(peer, forwarded)


def unauthenticated_admit(ip: str) -> bool | None:
    """Count one more unauthenticated socket of `ip`: True if admitted, False if over the cap
    (then not counted), None if Redis is unreachable (admitted, not counted)."""
    key = _PENDING_KEY.format(ip=ip)
    try:
        pipe = get_redis().pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, int(settings.WS_AUTH_TIMEOUT_SECONDS) + 60)
        count = pipe.execute()[0]
        if count <= settings.WS_MAX_UNAUTHENTICATED_PER_IP:
            return True
        unauthenticated_release(ip)
        return False
    except redis.RedisError as exc:
        logger.warning("ws unauthenticated-socket cap not kept, Redis unreachable (%s)", exc)
        return None


def unauthenticated_release(ip: str) -> None:
    with contextlib.suppress(redis.RedisError):  # else the count expires on its own
        get_redis().eval(_RELEASE, 1, _PENDING_KEY.format(ip=ip))


def failed_authentication_wait(ip: str) -> int | None:
    """Count a failed authentication from `ip`; the seconds to wait once past the limit."""
    try:
        rate_limit_hit(*failed_authentication_bucket(ip))
    except RateLimitExceeded as exc:
        return int(exc.headers.get("Retry-After", "60"))
    return None


_in_thread = sync_to_async(thread_sensitive=False)


class GuardMixin:
    """For the consumer, which provides `async _close(code, reason)`: `guard_admit()` after
    accepting (False: closed already), `guard_release()` once authenticated and on
    disconnect, `guard_refusal(code, reason)` for the close of a failed authentication."""

    guard_counted = False

    @property
    def guard_ip(self) -> str:
        return scope_client_ip(self.scope)

    async def guard_admit(self) -> bool:
        admitted = await _in_thread(unauthenticated_admit)(self.guard_ip)
        if admitted is False:
            reason = "Too many unauthenticated connections from this address."
            await self._close(CLOSE_POLICY_VIOLATION, reason)
            return False
        self.guard_counted = bool(admitted)
        return True

    async def guard_release(self) -> None:
        if self.guard_counted:
            self.guard_counted = False
            await _in_thread(unauthenticated_release)(self.guard_ip)

    async def guard_refusal(self, code: int, reason: str) -> tuple[int, str]:
        wait = await _in_thread(failed_authentication_wait)(self.guard_ip)
        if wait is None:
            return code, reason
        return CLOSE_TOO_MANY_FAILURES, f"Too many failed authentications; retry in {wait} s."

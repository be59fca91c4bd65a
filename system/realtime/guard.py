"""Limits on sockets that have not authenticated, per client address, across ws processes.

- A failed authentication counts against the address's anonymous bucket, the one REST's failed
  authentications count against (system.kernel.permissions.failed_authentication_bucket);
  past its limit the socket is closed with 4429 and says when to retry.
- An address holds at most WS_MAX_UNAUTHENTICATED_PER_IP sockets waiting to authenticate
  (opened without credentials, to send the `auth` command); one more is closed with 4008.
  Sockets with credentials in the handshake are authenticated at once and never wait, so they
  cost no count. The count lives in Redis, so it holds across ws processes; a socket leaves it
  once it authenticates or closes, and a count left behind by a killed process expires
  shortly after the authentication timeout.

- An authenticated socket holds a lease in two Redis sorted sets, its principal's and its
  address's, across ws processes: past WS_MAX_SOCKETS_PER_PRINCIPAL or WS_MAX_SOCKETS_PER_IP
  the new socket is closed with 4008 and a reason naming the limit. A socket renews its
  lease at each credential re-check and drops it when it closes; the lease of a socket whose
  process was killed runs out after SOCKET_LEASE_SECONDS.

The address is the REST rule's (system.kernel.principal.client_address) applied to the ASGI
scope: the peer, or with TRUSTED_PROXY_COUNT the address the outermost trusted proxy saw.
Like REST's rate limits these fail open while Redis is unreachable: authentication itself needs
no Redis, and a token is not a password to guess.
"""

import contextlib
import logging
import time
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
CLOSE_POLICY_LIMIT = 4008  # system.realtime.frames
# Under the rate-limit prefix, which tests clear between runs, like every other counter.
_PENDING_KEY = "371os:rl:ws-unauthenticated:{ip}"
_SOCKETS_KEY = "371os:rl:ws-sockets:{kind}:{name}"
# KEYS: the principal's set, the address's. ARGV: now, lease end, socket id, the two caps,
# the sets' expiry. Returns 0 (admitted), 1 (principal over its cap) or 2 (address).
_SOCKETS_ADMIT = """
for i = 1, 2 do redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', ARGV[1]) end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 1 end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[5]) then return 2 end
for i = 1, 2 do
  redis.call('ZADD', KEYS[i], ARGV[2], ARGV[3])
  redis.call('EXPIRE', KEYS[i], ARGV[6])
end
return 0
"""
_SOCKETS_RENEW = """
for i = 1, 2 do
  redis.call('ZADD', KEYS[i], ARGV[1], ARGV[2])
  redis.call('EXPIRE', KEYS[i], ARGV[3])
end
return 0
"""
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


def socket_lease_seconds() -> int:
    """How long a socket's lease in the socket counts lasts without a renewal."""
    return int(3 * settings.WS_AUTH_RECHECK_SECONDS) + 30


def _socket_keys(principal_id: str, ip: str) -> list[str]:
    return [
        _SOCKETS_KEY.format(kind="principal", name=principal_id),
        _SOCKETS_KEY.format(kind="ip", name=ip),
    ]


def sockets_admit(*, principal_id: str, ip: str, socket_id: str) -> str | None:
    """Count one more authenticated socket of the principal and of the address: None if
    admitted (or Redis is unreachable: fail open), else the reason it is refused."""
    now = time.time()
    lease = socket_lease_seconds()
    caps = (settings.WS_MAX_SOCKETS_PER_PRINCIPAL, settings.WS_MAX_SOCKETS_PER_IP)
    try:
        over = get_redis().eval(
            _SOCKETS_ADMIT,
            2,
            *_socket_keys(principal_id, ip),
            now,
            now + lease,
            socket_id,
            *caps,
            lease,
        )
    except redis.RedisError as exc:
        logger.warning("ws socket caps not kept, Redis unreachable (%s)", exc)
        return None
    if over == 1:
        return f"Too many connections for this principal (at most {caps[0]})."
    if over == 2:
        return f"Too many connections from this address (at most {caps[1]})."
    return None


def sockets_renew(*, principal_id: str, ip: str, socket_id: str) -> None:
    lease = socket_lease_seconds()
    with contextlib.suppress(redis.RedisError):  # renewed at the next re-check
        keys = _socket_keys(principal_id, ip)
        get_redis().eval(_SOCKETS_RENEW, 2, *keys, time.time() + lease, socket_id, lease)


def sockets_release(*, principal_id: str, ip: str, socket_id: str) -> None:
    with contextlib.suppress(redis.RedisError):  # else the lease runs out on its own
        pipe = get_redis().pipeline(transaction=False)
        for key in _socket_keys(principal_id, ip):
            pipe.zrem(key, socket_id)
        pipe.execute()


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
    guard_principal_id: str | None = None  # once its socket lease is held

    @property
    def guard_ip(self) -> str:
        return scope_client_ip(self.scope)

    async def guard_admit(self) -> bool:
        admitted = await _in_thread(unauthenticated_admit)(self.guard_ip)
        if admitted is False:
            reason = "Too many unauthenticated connections from this address."
            await self._close(CLOSE_POLICY_LIMIT, reason)
            return False
        self.guard_counted = bool(admitted)
        return True

    async def guard_release(self, socket_id: str | None = None) -> None:
        """Leave the unauthenticated count; with `socket_id` (on disconnect) also the socket
        counts."""
        if self.guard_counted:
            self.guard_counted = False
            await _in_thread(unauthenticated_release)(self.guard_ip)
        if socket_id is not None and self.guard_principal_id is not None:
            principal_id, self.guard_principal_id = self.guard_principal_id, None
            await _in_thread(sockets_release)(
                principal_id=principal_id, ip=self.guard_ip, socket_id=socket_id
            )

    async def guard_sockets_admit(self, principal_id: str, socket_id: str) -> bool:
        """Take the socket's lease in its principal's and address's counts; False: over a
        cap, and closed."""
        refused = await _in_thread(sockets_admit)(
            principal_id=principal_id, ip=self.guard_ip, socket_id=socket_id
        )
        if refused is not None:
            await self._close(CLOSE_POLICY_LIMIT, refused)
            return False
        self.guard_principal_id = principal_id
        return True

    async def guard_sockets_renew(self, socket_id: str) -> None:
        if self.guard_principal_id is not None:
            await _in_thread(sockets_renew)(
                principal_id=self.guard_principal_id, ip=self.guard_ip, socket_id=socket_id
            )

    async def guard_refusal(self, code: int, reason: str) -> tuple[int, str]:
        wait = await _in_thread(failed_authentication_wait)(self.guard_ip)
        if wait is None:
            return code, reason
        return CLOSE_TOO_MANY_FAILURES, f"Too many failed authentications; retry in {wait} s."

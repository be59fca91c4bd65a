"""API keys verified in the last second, per process: most requests authenticate with no query.

A request's key is looked up by prefix, its secret's hash compared in constant time, and its
expiry checked on every request; the row, its owner and its effective roles are reused for at
most API_KEY_CACHE_SECONDS (1 s at most). A change made in this process (a key revoked or
edited, a user deactivated, a user's groups changed) empties the cache at once (signals in
system.auth.apps); one made in another process takes effect here within that second, which is
the revocation bound the platform promises. WebSocket authentication reads the database every
time (system.realtime.auth), so a socket re-check always sees the current rows.
"""

import hmac
import threading
import time

from django.conf import settings
from django.utils import timezone

from system.kernel.principal import remember_effective_roles
from system.models import ApiKey

_MAX_ENTRIES = 4096
_entries: dict[str, tuple[float, str, ApiKey, object]] = {}
_lock = threading.Lock()


def key_cache_clear(*args, **kwargs) -> None:
    """Forget every verified key (also a signal receiver: any arguments)."""
    with _lock:
        _entries.clear()


def key_cache_get(prefix: str, secret_hash: str):
    """(owner, key) as the last verification found them, or None. Shared by the requests of
    the next second (copying them cost more than the query they save): read-only, but for
    the key's last_used_at stamp, which every request sharing it may see."""
    entry = _entries.get(prefix)
    if entry is None:
        return None
    until, expected, key, owner = entry
    if time.monotonic() >= until or not hmac.compare_digest(secret_hash, expected):
        return None
    if not key.is_usable(timezone.now()):  # expiry passes between two verifications
        return None
    return owner, key


def key_cache_put(key: ApiKey, owner, roles: frozenset[str]) -> None:
    seconds = min(float(settings.API_KEY_CACHE_SECONDS), 1.0)
    if seconds <= 0:
        return
    remember_effective_roles(key, roles)
    with _lock:
        if len(_entries) >= _MAX_ENTRIES:
            _entries.clear()
        _entries[key.prefix] = (time.monotonic() + seconds, key.secret_hash, key, owner)

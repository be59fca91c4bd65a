"""DRF authentication: JWT bearer tokens and API keys.

API keys arrive as `Authorization: ApiKey <key>` (the spec) or `X-API-KEY: <key>` (what
ElizaOS clients send). A key is `371os_<prefix>_<secret>`: the prefix finds the row, the
secret's SHA-256 is compared in constant time.
"""

import hashlib
import hmac
from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request
from rest_framework_simplejwt.authentication import JWTAuthentication

from system.auth.keycache import key_cache_get, key_cache_put
from system.kernel.access import unique_or_none
from system.kernel.permissions import count_failed_authentication
from system.kernel.principal import api_key_effective_roles
from system.models import ApiKey

KEY_PREFIX = "371os"
_LAST_USED_GRANULARITY = timedelta(minutes=1)


def hash_secret(secret: str) -> str:
    # The secret is 256 random bits: a fast hash is enough, no salt or stretching needed.
    return hashlib.sha256(secret.encode()).hexdigest()


def split_key(raw: str) -> tuple[str, str] | None:
    parts = raw.strip().split("_")
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def _touch(key: ApiKey) -> None:
    """Stamp last_used_at: at most one write a minute per key (and process), not one per
    request (a cached key is the instance the cache holds: it keeps the stamp)."""
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at >= _LAST_USED_GRANULARITY:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now


class CountFailuresMixin:
    """Failed authentications are counted per client address (DRF authenticates before any
    permission runs, so the policy permission never sees them)."""

    def authenticate(self, request: Request):
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            count_failed_authentication(request)
            raise


class _ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "ApiKey"

    def authenticate(self, request: Request):
        raw = request.headers.get("X-API-KEY")
        if raw is None:
            header = request.headers.get("Authorization", "")
            scheme, _, value = header.partition(" ")
            if scheme.lower() != self.keyword.lower():
                return None
            raw = value
        parts = split_key(raw)
        if parts is not None:
            cached = key_cache_get(parts[0], hash_secret(parts[1]))
            if cached is not None:
                _touch(cached[1])
                return cached
        owner, key = self._authenticate_key(raw)
        key_cache_put(key, owner, api_key_effective_roles(key))
        return owner, key

    def _authenticate_key(self, raw: str):
        """Verify against the database (WebSocket authentication calls this directly)."""
        parts = split_key(raw)
        invalid = exceptions.AuthenticationFailed("Invalid API key.")
        if parts is None:
            raise invalid
        prefix, secret = parts
        key = unique_or_none(
            ApiKey.objects.select_related("owner", "created_by").filter(prefix=prefix)
        )
        # Hash and compare even when no row matched, so timing does not tell prefixes apart.
        expected = key.secret_hash if key else "0" * 64
        if not hmac.compare_digest(hash_secret(secret), expected) or key is None:
            raise invalid
        if not key.is_usable(timezone.now()) or not key.owner.is_active:
            raise exceptions.AuthenticationFailed("API key revoked or expired.")
        _touch(key)
        return key.owner, key

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="371os"'


class ApiKeyAuthentication(CountFailuresMixin, _ApiKeyAuthentication):
    pass


class BearerAuthentication(CountFailuresMixin, JWTAuthentication):
    """simplejwt's bearer tokens, with our realm in WWW-Authenticate."""

    www_authenticate_realm = "371os"

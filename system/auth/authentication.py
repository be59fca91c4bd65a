"""DRF authentication: JWT bearer tokens and API keys.

API keys arrive as `Authorization: ApiKey <key>` (the spec) or `X-API-KEY: <key>` (what
ElizaOS clients send, and what Swagger's "Authorize" sends for a pasted bare key). A key is
`371os_<prefix>_<secret>`: the prefix finds the row, the secret's SHA-256 is compared in
constant time.

A client that gets its credentials wrong is told how: an expired JWT answers `token_expired`
(refresh it) and any other bad one `invalid_token` (log in again), with none of simplejwt's
internals in `details`; an Authorization header in any other scheme (`Token <key>`, a bare
key) answers 401 `unsupported_auth_scheme` naming the ones that work.
"""

import hashlib
import hmac
from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import ExpiredTokenError, TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import Token

from system.auth.keycache import key_cache_get, key_cache_put
from system.kernel.access import unique_or_none
from system.kernel.permissions import count_failed_authentication
from system.kernel.principal import api_key_effective_roles
from system.models import ApiKey

KEY_PREFIX = "371os"
_LAST_USED_GRANULARITY = timedelta(minutes=1)
API_KEY_HEADER = "X-API-KEY"
SUPPORTED_SCHEMES = [
    "Authorization: ApiKey <key>",
    "Authorization: Bearer <jwt>",
    f"{API_KEY_HEADER}: <key>",
]


class TokenExpired(exceptions.AuthenticationFailed):
    """A well-signed JWT past its `exp`: the client should refresh it."""

    error_code = "token_expired"
    default_detail = "The token has expired: refresh it or log in again."


class TokenInvalid(exceptions.AuthenticationFailed):
    """A JWT that is not ours, tampered, of the wrong type or audience: log in again."""

    error_code = "invalid_token"
    default_detail = "The token is invalid."


class UnsupportedScheme(exceptions.AuthenticationFailed):
    error_code = "unsupported_auth_scheme"
    default_detail = (
        "Unsupported Authorization scheme. Send an API key as 'Authorization: ApiKey <key>' "
        f"or '{API_KEY_HEADER}: <key>', or a JWT as 'Authorization: Bearer <jwt>'."
    )

    def __init__(self) -> None:
        super().__init__()
        self.error_details = {"supported_schemes": SUPPORTED_SCHEMES}


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
        raw = request.headers.get(API_KEY_HEADER)
        if raw is not None:
            # A key pasted with its scheme into the header's field works too.
            scheme, _, value = raw.strip().partition(" ")
            raw = value if scheme.lower() == self.keyword.lower() else raw
        else:
            header = request.headers.get("Authorization", "").strip()
            scheme, _, value = header.partition(" ")
            if not header or scheme.lower() == "bearer":
                return None  # no credentials, or BearerAuthentication's
            if scheme.lower() != self.keyword.lower():
                raise UnsupportedScheme()
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

    def get_validated_token(self, raw_token: bytes) -> Token:
        """simplejwt's, with its per-class message list (internals) replaced by one of two
        answers a client can act on: expired (refresh) or invalid (log in again)."""
        expired = False
        for token_class in jwt_settings.AUTH_TOKEN_CLASSES:
            try:
                return token_class(raw_token)
            except ExpiredTokenError:
                expired = True  # raised only after the signature verified
            except TokenError:
                pass
        raise TokenExpired() if expired else TokenInvalid()

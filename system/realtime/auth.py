"""Who is on the other end of a socket: the same JWTs and API keys as the REST API.

Credentials come, in this order, from the `token` query parameter (what the spec and browsers
use), the `Authorization` header (`Bearer <jwt>` or `ApiKey <key>`) or `X-API-KEY` (servers and
CLIs), or the first message, `{"command": "auth", "token": ...}`. Everything here is synchronous
ORM code: the consumer calls it through `system.realtime.db.db_call`. The principal is the
kernel's, built by the same constructors as a REST request's (system.kernel.principal).
"""

from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs

from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

from system.auth.authentication import ApiKeyAuthentication, split_key
from system.kernel.principal import (
    Principal,
    api_key_effective_roles,
    principal_for_api_key,
    principal_for_jwt,
)
from system.models import ApiKey


class AuthenticationError(Exception):
    """Bad, expired or revoked credentials; the message is safe to send as the close reason."""


def query_param(scope: dict[str, Any], name: str) -> str | None:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    values = query.get(name)
    return values[0] if values else None


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def credentials_from_scope(scope: dict[str, Any]) -> str | None:
    """The raw token (JWT or API key) the handshake carries, if any. A header with a scheme we
    do not know is returned as is, so that it fails authentication instead of being ignored."""
    token = query_param(scope, "token")
    if token is not None:
        return token
    authorization = _header(scope, b"authorization")
    if authorization is not None:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() in ("bearer", "apikey"):
            return value.strip()
        return authorization
    return _header(scope, b"x-api-key")


def _from_api_key(raw: str) -> Principal:
    try:
        # The REST authentication's own check: constant-time comparison, revocation, expiry,
        # owner still active, last_used_at at most once a minute.
        user, key = ApiKeyAuthentication()._authenticate_key(raw)
    except AuthenticationFailed as exc:
        raise AuthenticationError(str(exc.detail)) from None
    return principal_for_api_key(key, user=user)


def _from_jwt(raw: str) -> Principal:
    authentication = JWTAuthentication()
    try:
        token = authentication.get_validated_token(raw.encode())
        user = authentication.get_user(token)
    except (InvalidToken, TokenError, AuthenticationFailed):
        raise AuthenticationError("Invalid or expired token.") from None
    return principal_for_jwt(user, token.payload)


def principal_authenticate(*, token: Any) -> Principal:
    """A principal for a JWT or an API key; raises AuthenticationError."""
    if not isinstance(token, str) or not token.strip():
        raise AuthenticationError("Credentials required.")
    token = token.strip()
    if split_key(token) is not None:
        return _from_api_key(token)
    return _from_jwt(token)


def principal_check(*, principal: Principal) -> Principal:
    """Re-validate an open connection's credentials: raises AuthenticationError once a JWT has
    expired, an API key is revoked or expired, or the user is deactivated. Returns the
    principal, with an API key's current expiry."""
    now = timezone.now()
    if principal.api_key_id is not None:
        key = (
            ApiKey.objects.select_related("owner", "created_by")
            .filter(pk=principal.api_key_id)
            .first()
        )
        if key is None or not key.is_usable(now) or not key.owner.is_active:
            raise AuthenticationError("API key revoked or expired.")
        # The key's roles are its maker's and owner's current ones at most: re-read them.
        roles = api_key_effective_roles(key)
        if key.expires_at != principal.expires_at or roles != principal.roles:
            return replace(principal, expires_at=key.expires_at, roles=roles)
        return principal
    if principal.expires_at is not None and principal.expires_at <= now:
        raise AuthenticationError("Token expired.")
    if not get_user_model().objects.filter(pk=principal.user_id, is_active=True).exists():
        raise AuthenticationError("User inactive.")
    return principal

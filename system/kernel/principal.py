"""Who is calling: the `Principal`, built the same way for a REST request and a WebSocket, and
the client address of a request.

A principal is a user, or an API key: a key made for a named user acts for that user; any
other key acts for itself, through a service user of its own (`key:<prefix>`), so that
everything keyed on the user (owners, creators, posters, event scopes) tells keys apart. Its
roles come from the credential: an API key carries its own roles, bounded by its maker's and
its named owner's current roles (api_key_effective_roles); a JWT carries the roles its user
held when it was issued (at most one access lifetime old); anything else (a session, a
forced authentication in tests) falls back to the user's groups. The constructors below are
the only places that apply those rules: principal_from_request (REST and the admin) and
system.realtime.auth (WebSocket) build every principal through them.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest
from rest_framework.exceptions import NotAuthenticated
from rest_framework.request import Request

from system.kernel.roles import ADMIN, ROLES, user_roles
from system.models import ApiKey

USER = "user"
API_KEY = "api_key"
# A standalone key's service user is named `key:<prefix>`.
SERVICE_USER_PREFIX = "key:"
_MAX_KEY_CHAIN = 4
# Where principal_from_request keeps its answer, on the request object it was given: a DRF
# Request and the Django request it wraps may carry different credentials (an admin's session
# cookie next to an API key), so neither answers for the other.
_CACHE_ATTRIBUTE = "_371os_principal"
_ROLES_ATTRIBUTE = "_371os_effective_roles"


@dataclass(frozen=True)
class Principal:
    """The caller, as every selector, service and permission sees it."""

    user_id: int
    # How the principal appears in channel memberships and as a message's sender.
    username: str
    roles: frozenset[str]
    api_key_id: int | None = None
    # A JWT's `exp`, or an API key's expiry; None for a key that never expires or a session.
    expires_at: datetime | None = None

    @property
    def is_standalone_key(self) -> bool:
        """A key acting for itself (its service user), not for a named user."""
        return self.api_key_id is not None and is_service_username(self.username)

    @property
    def kind(self) -> str:
        return API_KEY if self.api_key_id is not None else USER

    @property
    def id(self) -> str:
        """A stable label: per key for key auth, per user otherwise. The rate-limit bucket,
        the idempotency owner and part of every ETag."""
        return f"key:{self.api_key_id}" if self.api_key_id is not None else f"user:{self.user_id}"

    @property
    def display_name(self) -> str:
        return self.username

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.roles

    def describe(self) -> dict[str, Any]:
        """The WebSocket's `connection_established` payload."""
        return {
            "id": self.id,
            "type": self.kind,
            "username": self.username,
            "roles": sorted(self.roles),
        }


def is_service_username(username: str) -> bool:
    """Whether a username is a standalone key's service user (`key:<prefix>`): Django's
    username validators refuse ':', so no person's account can take such a name."""
    return username.startswith(SERVICE_USER_PREFIX)


def _current_roles(user: AbstractBaseUser, depth: int) -> frozenset[str]:
    """A user's roles now: its groups', or for a standalone key's service user the
    effective roles of that key (a key made by a key answers to its maker's maker)."""
    if not is_service_username(user.get_username()):
        return user_roles(user)
    if depth >= _MAX_KEY_CHAIN or not user.is_active:
        return frozenset()
    key = ApiKey.objects.select_related("owner", "created_by").filter(owner=user).first()
    return _effective_roles(key, depth + 1) if key is not None else frozenset()


def _bounded(roles: frozenset[str], by: frozenset[str]) -> frozenset[str]:
    # An admin may do everything any role may: it bounds nothing.
    return roles if ADMIN in by else roles & by


def _effective_roles(key: ApiKey, depth: int = 0) -> frozenset[str]:
    roles = key.role_set
    if key.created_by_id is None:
        return roles  # made at the shell, or before makers were recorded: its own roles
    roles = _bounded(roles, _current_roles(key.created_by, depth))
    if not is_service_username(key.owner.get_username()):
        roles = _bounded(roles, user_roles(key.owner))
    return roles


def api_key_effective_roles(key: ApiKey) -> frozenset[str]:
    """A key's roles, never more than its maker's and its named owner's current roles: read
    at every use (or, for a key authentication has just verified, reused from that
    verification: at most a second old, see system.auth.keycache), so demoting the maker
    takes the roles from the key at once."""
    remembered = key.__dict__.get(_ROLES_ATTRIBUTE)
    return remembered if remembered is not None else _effective_roles(key)


def remember_effective_roles(key: ApiKey, roles: frozenset[str]) -> None:
    key.__dict__[_ROLES_ATTRIBUTE] = roles


def principal_for_api_key(key: ApiKey, *, user: AbstractBaseUser | None = None) -> Principal:
    """An API key acts for its owner (a named user, or the key's own service user) with
    api_key_effective_roles. `user` is the owner when the caller already holds it
    (authentication loaded it with the key)."""
    owner = user if user is not None else key.owner
    return Principal(
        user_id=owner.pk,
        username=owner.get_username(),
        roles=api_key_effective_roles(key),
        api_key_id=key.pk,
        expires_at=key.expires_at,
    )


def principal_for_jwt(user: AbstractBaseUser, payload: dict[str, Any]) -> Principal:
    """A JWT's user with the roles the token was issued with (no query: the status API builds
    principals from tokens while the database is away)."""
    exp = payload.get("exp")
    return Principal(
        user_id=user.pk,
        username=user.get_username(),
        roles=frozenset(r for r in payload.get("roles", []) if r in ROLES),
        expires_at=datetime.fromtimestamp(exp, tz=UTC) if exp is not None else None,
    )


def principal_for_user(user: AbstractBaseUser) -> Principal:
    """A user authenticated some other way (the admin site's session): its groups' roles."""
    return Principal(user_id=user.pk, username=user.get_username(), roles=user_roles(user))


def principal_from_request(request: Request | HttpRequest) -> Principal:
    """The principal of an authenticated request, computed once per request. Raises
    NotAuthenticated for an anonymous one."""
    cached = request.__dict__.get(_CACHE_ATTRIBUTE)
    user = request.user
    if cached is not None and cached.user_id == user.pk:
        return cached
    if not user.is_authenticated:
        raise NotAuthenticated()
    auth = getattr(request, "auth", None)
    payload = getattr(auth, "payload", None)
    if isinstance(auth, ApiKey):
        principal = principal_for_api_key(auth, user=user)
    elif payload is not None:
        principal = principal_for_jwt(user, payload)
    else:
        principal = principal_for_user(user)
    request.__dict__[_CACHE_ATTRIBUTE] = principal
    return principal


def client_ip(request: HttpRequest | Request) -> str:
    """The client address of a request (see client_address)."""
    meta = request.META
    return client_address(meta.get("REMOTE_ADDR", ""), meta.get("HTTP_X_FORWARDED_FOR", ""))


def client_address(peer: str, forwarded_for: str) -> str:
    """The peer's address, unless TRUSTED_PROXY_COUNT proxies append to X-Forwarded-For: then
    the address the outermost trusted proxy saw. For a request (client_ip) and a WebSocket's
    ASGI scope (system.realtime.guard) alike."""
    hops = settings.TRUSTED_PROXY_COUNT
    if hops > 0:
        forwarded = [p.strip() for p in forwarded_for.split(",") if p.strip()]
        if len(forwarded) >= hops:
            return forwarded[-hops]
    return peer

"""Who is calling: roles, rate-limit bucket and client address of a DRF request."""

from django.conf import settings
from django.http import HttpRequest
from rest_framework.request import Request

from system.kernel.roles import ROLES, user_roles
from system.models import ApiKey


def request_roles(request: Request) -> frozenset[str]:
    """An API key carries its own roles; a JWT carries the roles its user held when it was
    issued (at most one access lifetime old); anything else falls back to the user's groups."""
    auth = request.auth
    if isinstance(auth, ApiKey):
        return auth.role_set
    payload = getattr(auth, "payload", None)
    if payload is not None:
        return frozenset(r for r in payload.get("roles", []) if r in ROLES)
    return user_roles(request.user)


def principal_id(request: Request) -> str:
    """A stable label of the principal: per key for key auth, per user otherwise."""
    if isinstance(request.auth, ApiKey):
        return f"key:{request.auth.pk}"
    return f"user:{request.user.pk}"


def client_ip(request: HttpRequest | Request) -> str:
    """REMOTE_ADDR, unless TRUSTED_PROXY_COUNT proxies append to X-Forwarded-For: then the
    address the outermost trusted proxy saw."""
    meta = request.META
    hops = settings.TRUSTED_PROXY_COUNT
    if hops > 0:
        forwarded = [
            p.strip() for p in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if p.strip()
        ]
        if len(forwarded) >= hops:
            return forwarded[-hops]
    return meta.get("REMOTE_ADDR", "")

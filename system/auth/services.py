"""API keys and JWT pairs: creating, revoking, obtaining and refreshing them."""

import secrets
from datetime import datetime
from typing import Any

from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.state import token_backend
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from system.auth.authentication import KEY_PREFIX, hash_secret
from system.kernel.exceptions import InvalidCredentials, InvalidToken, ValidationFailed
from system.kernel.principal import SERVICE_USER_PREFIX, is_service_username
from system.kernel.roles import ROLES, user_roles
from system.kernel.sockets import sockets_recheck_principal
from system.models import ApiKey


def _validate_roles(roles: list[str]) -> str:
    unknown = sorted(set(roles) - set(ROLES))
    if unknown or not roles:
        raise ValidationFailed(
            "Roles must be a non-empty subset of the platform's roles.",
            details={"roles": [f"Choose from {list(ROLES)}; unknown: {unknown}."]},
        )
    return ",".join(sorted(set(roles)))


def api_key_owner_get(*, username: str) -> AbstractBaseUser:
    """The named user a key is made for (the REST `owner` field): an existing, active person,
    never another key's service user."""
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None or is_service_username(username):
        raise ValidationFailed(details={"owner": [f"No active user named '{username}'."]})
    return user


@transaction.atomic
def api_key_create(
    *,
    name: str,
    roles: list[str],
    owner: AbstractBaseUser | None = None,
    created_by: AbstractBaseUser | None = None,
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the full key, which exists nowhere else afterwards.

    With `owner` the key acts for that user; without, it is a principal of its own, through a
    new service user `key:<prefix>` (unusable password, no groups). `created_by` is who made
    it: every maker's call passes it (the REST API, the admin, seed_demo), and the key's roles
    are then bounded by that user's current roles at every use. None only for the shell's
    create_api_key and tests: such a key keeps its own roles."""
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise ValidationFailed(details={"name": ["Must be 1 to 100 characters."]})
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationFailed(details={"expires_at": ["Must be in the future."]})
    role_list = _validate_roles(roles)
    secret = secrets.token_hex(32)
    users = get_user_model().objects
    while True:
        prefix = secrets.token_hex(6)
        service_username = f"{SERVICE_USER_PREFIX}{prefix}"
        taken = users.filter(username=service_username).exists()
        if not taken and not ApiKey.objects.filter(prefix=prefix).exists():
            break
    if owner is None:
        owner = users.create_user(username=service_username)  # no password: unusable
    api_key = ApiKey.objects.create(
        name=name,
        owner=owner,
        created_by=created_by,
        roles=role_list,
        prefix=prefix,
        secret_hash=hash_secret(secret),
        expires_at=expires_at,
    )
    return api_key, f"{KEY_PREFIX}_{prefix}_{secret}"


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    """Idempotent: revoking a revoked key keeps its first revocation time."""
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        sockets_recheck_principal(api_key_id=api_key.pk)  # its open sockets close now
    return api_key


# --- JWT ----------------------------------------------------------------------------------------


def _token_pair(user: AbstractBaseUser) -> dict[str, Any]:
    refresh = RefreshToken.for_user(user)  # records the OutstandingToken row
    refresh["roles"] = sorted(user_roles(user))
    lifetime = jwt_settings.ACCESS_TOKEN_LIFETIME
    return {
        "access": str(refresh.access_token),
        "refresh": str(refresh),
        "token_type": "Bearer",
        "expires_in": int(lifetime.total_seconds()),
    }


def token_obtain(*, username: str, password: str, request: HttpRequest | None = None) -> dict:
    user = authenticate(request, username=username, password=password)
    if user is None or not user.is_active:
        raise InvalidCredentials()
    return _token_pair(user)


def _refresh_token(raw: str) -> RefreshToken:
    """A signed, unexpired refresh token for our audience and issuer (blacklist not checked)."""
    try:
        token = RefreshToken(raw, verify=False)
        token_backend.decode(raw, verify=True)  # signature, expiry, audience, issuer
        token.verify_token_type()
    except TokenError as exc:
        raise InvalidToken() from exc
    return token


@transaction.atomic
def token_refresh(*, refresh: str) -> dict:
    """Rotate: the presented refresh token is blacklisted and a new pair issued, with roles
    read afresh. Presenting a token twice fails the second time, even concurrently."""
    token = _refresh_token(refresh)
    user = (
        get_user_model()
        .objects.filter(pk=token.get(jwt_settings.USER_ID_CLAIM), is_active=True)
        .first()
    )
    outstanding = OutstandingToken.objects.filter(jti=token.get("jti")).first()
    if user is None or outstanding is None:
        raise InvalidToken()
    _, created = BlacklistedToken.objects.get_or_create(token=outstanding)
    if not created:
        raise InvalidToken()
    return _token_pair(user)


def token_revoke(*, refresh: str) -> None:
    """Blacklist a refresh token; idempotent for a token already revoked."""
    _refresh_token(refresh).blacklist()

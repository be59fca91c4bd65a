"""Authentication that survives a database outage, for the status API only.

While the database is unreachable, an API key this process verified in the last
KEY_MEMO_SECONDS is still accepted, and a JWT's own claims stand in for its user row."""

import hmac
import threading
import time
from typing import Any

from django.contrib.auth import get_user_model
from django.db import DatabaseError
from django.utils import timezone
from rest_framework_simplejwt.models import TokenUser

from system.auth.authentication import (
    ApiKeyAuthentication,
    BearerAuthentication,
    hash_secret,
    split_key,
)
from system.kernel.exceptions import ServiceUnavailable
from system.models import ApiKey

# Keys verified against the database in the last KEY_MEMO_SECONDS, by prefix.
KEY_MEMO_SECONDS = 600
_KEY_MEMO_SIZE = 1024
_key_memo: dict[str, tuple[float, str, dict[str, Any]]] = {}
_key_memo_lock = threading.Lock()


class AuthenticationUnavailable(ServiceUnavailable):
    code = "authentication_unavailable"
    message = (
        "The database is unreachable, so this API key cannot be verified. A JWT, or a key "
        "that checked the status in the last few minutes, still works."
    )


def _memo_store(api_key: ApiKey) -> None:
    record = {
        "pk": api_key.pk,
        "name": api_key.name,
        "roles": api_key.roles,
        "expires_at": api_key.expires_at,
        "owner_pk": api_key.owner.pk,
        "owner_username": api_key.owner.get_username(),
    }
    with _key_memo_lock:
        _key_memo.pop(api_key.prefix, None)
        if len(_key_memo) >= _KEY_MEMO_SIZE:
            _key_memo.pop(next(iter(_key_memo)))
        _key_memo[api_key.prefix] = (time.monotonic(), api_key.secret_hash, record)


def _memo_lookup(raw: str) -> tuple[Any, ApiKey] | None:
    parts = split_key(raw)
    if parts is None:
        return None
    prefix, secret = parts
    with _key_memo_lock:
        entry = _key_memo.get(prefix)
    if entry is None or time.monotonic() - entry[0] > KEY_MEMO_SECONDS:
        return None
    _, secret_hash, record = entry
    if not hmac.compare_digest(hash_secret(secret), secret_hash):
        return None
    api_key = ApiKey(
        pk=record["pk"],
        name=record["name"],
        prefix=prefix,
        roles=record["roles"],
        expires_at=record["expires_at"],
        owner_id=record["owner_pk"],
    )
    if not api_key.is_usable(timezone.now()):
        return None
    owner = get_user_model()(pk=record["owner_pk"], is_active=True)
    setattr(owner, owner.USERNAME_FIELD, record["owner_username"])
    api_key.owner = owner
    return owner, api_key


class OutageTolerantApiKeyAuthentication(ApiKeyAuthentication):
    """API keys as everywhere; while the database is unreachable, a key this process verified
    in the last KEY_MEMO_SECONDS is still accepted (revocations apply whenever the database
    answers, since the memo is consulted only when it does not)."""

    def _authenticate_key(self, raw: str):
        try:
            user, api_key = super()._authenticate_key(raw)
        except DatabaseError:
            remembered = _memo_lookup(raw)
            if remembered is None:
                raise AuthenticationUnavailable() from None
            return remembered
        _memo_store(api_key)
        return user, api_key


class OutageTolerantBearerAuthentication(BearerAuthentication):
    """JWTs as everywhere; while the database is unreachable the token's own claims (user id,
    roles) stand in for the user row."""

    def get_user(self, validated_token):
        try:
            return super().get_user(validated_token)
        except DatabaseError:
            return TokenUser(validated_token)

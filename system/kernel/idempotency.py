"""`Idempotency-Key` for POSTs that create things.

The same key from the same principal within 24 h replays the first response and creates
nothing; the same key with a different body is 422 `idempotency_key_mismatch`; a retry while
the first request is still running is 409 `idempotency_key_in_use`. The key is claimed in its
own committed row before the work starts, so concurrent duplicates see each other.
A claim whose work committed is kept with its response, even if an after-commit hook fails.
"""

import hashlib
import json
import logging
from collections.abc import Callable
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response

from system.kernel.exceptions import Conflict, DomainError, ValidationFailed
from system.kernel.principal import principal_from_request
from system.kernel.timefmt import IsoZJSONEncoder
from system.models import IdempotencyRecord

logger = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
RETENTION = timedelta(hours=24)
# A claim older than this whose request never finished (a crashed process) may be taken over.
ABANDONED_AFTER = timedelta(minutes=2)


class IdempotencyKeyMismatch(DomainError):
    code = "idempotency_key_mismatch"
    http_status = 422
    message = "This Idempotency-Key was used with a different request body."


class IdempotencyKeyInUse(Conflict):
    code = "idempotency_key_in_use"
    message = "A request with this Idempotency-Key is still being processed."


def _fingerprint(request: Request) -> str:
    body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def _claim(owner: str, key: str, fingerprint: str) -> IdempotencyRecord | None:
    """Claim the key; returns the earlier record when it is already claimed."""
    now = timezone.now()
    for _ in range(2):
        try:
            with transaction.atomic():
                IdempotencyRecord.objects.create(owner=owner, key=key, fingerprint=fingerprint)
            return None
        except IntegrityError:
            existing = IdempotencyRecord.objects.filter(owner=owner, key=key).first()
            if existing is None:
                continue
            stale = existing.created_at < now - RETENTION or (
                existing.response_status is None and existing.created_at < now - ABANDONED_AFTER
            )
            if not stale:
                return existing
            IdempotencyRecord.objects.filter(pk=existing.pk).delete()
    raise IdempotencyKeyInUse()


def idempotent(request: Request, handler: Callable[[], Response]) -> Response:
    """Run `handler` at most once per (principal, Idempotency-Key); replay its response."""
    key = request.headers.get(HEADER)
    if key is None:
        return handler()
    if not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise ValidationFailed(
            f"{HEADER} must be 1 to {MAX_KEY_LENGTH} characters.",
            details={HEADER: [f"1 to {MAX_KEY_LENGTH} characters."]},
        )
    owner, fingerprint = principal_from_request(request).id, _fingerprint(request)
    existing = _claim(owner, key, fingerprint)
    if existing is not None:
        if existing.fingerprint != fingerprint:
            raise IdempotencyKeyMismatch()
        if existing.response_status is None:
            raise IdempotencyKeyInUse()
        replay = Response(existing.response_body, status=existing.response_status)
        replay["Idempotent-Replayed"] = "true"
        return replay
    committed = False

    def mark_committed() -> None:
        nonlocal committed
        committed = True

    try:
        # The work and the stored response commit together: no response is ever lost for
        # work that happened.
        with transaction.atomic():
            # The first of the transaction's hooks: a later one that raises cannot make a
            # committed request look failed (and its claim deleted, its work done twice).
            transaction.on_commit(mark_committed)
            response = handler()
            IdempotencyRecord.objects.filter(owner=owner, key=key).update(
                response_status=response.status_code,
                # As the client read it (datetimes as iso_z), so a replay is byte-identical.
                response_body=json.loads(json.dumps(response.data, cls=IsoZJSONEncoder)),
            )
    except BaseException as exc:
        if not committed:
            # Failed requests leave no claim: the client may retry with the same key.
            IdempotencyRecord.objects.filter(owner=owner, key=key).delete()
            raise
        if not isinstance(exc, Exception):
            raise
        # The work and its stored response committed: the client gets that response.
        logger.warning(
            "a hook after the commit of an idempotent request failed (%s)", type(exc).__name__
        )
    return response


def idempotency_prune() -> int:
    cutoff = timezone.now() - RETENTION
    return IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()[0]

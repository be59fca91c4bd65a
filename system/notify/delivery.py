"""Webhook delivery: one endpoint's pending deliveries go out one at a time, in row-id order,
signed, to an address the SSRF guard approved just before the request.

One run per endpoint at a time: a Redis lock (`lock_key`, a token, a TTL of one attempt's
lease: the HTTP timeout plus a margin, renewed before each delivery, released at the end). The
database guards too, should Redis lose the lock: an attempt is claimed by a conditional UPDATE
of `attempts` that also moves `next_attempt_at` past the attempt's lease, so no other run makes
that attempt or the next one while the request may still be going. A run is bounded
(RUN_DELIVERIES deliveries or RUN_SECONDS) and queues itself again when work is left; the
dispatcher's sweep queues endpoints whose head delivery is due (retries, and tasks lost with a
worker).

Each attempt is written (WebhookAttempt, `attempts` + 1) and committed before the request, so
a worker killed mid-request leaves its trace: the next run marks that attempt "interrupted" and
makes the next one (at least once; the receiver sees the same `webhook-id` again). The request
runs with no transaction open; its outcome is recorded in a second short transaction:
2xx succeeded; a timeout, a connection error, 5xx, 408, 409 or 429 waits its backoff
(WEBHOOK_RETRY_SECONDS, ±20 % jitter; Retry-After honoured, up to MAX_RETRY_AFTER) until the
retries run out; anything else (3xx included: redirects are not followed) fails at once. A
waiting delivery holds back the endpoint's later ones; a failed one does not. An endpoint
failing without a success for WEBHOOK_DISABLE_AFTER is disabled and its owner alerted.
"""

import json
import random
import time
import uuid
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from system.kernel.outbox import enqueue
from system.kernel.redis_client import get_redis
from system.kernel.timefmt import IsoZJSONEncoder, iso_z
from system.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from system.notify import alerts
from system.notify.signing import signed_headers
from system.notify.ssrf import PostResult, WebhookUrlRefused, pinned_post, webhook_url_resolve

USER_AGENT = "371OS-Webhooks/1"
RUN_DELIVERIES = 50
RUN_SECONDS = 60.0
LEASE_MARGIN_SECONDS = 5  # an attempt's lease (and the lock's TTL): the HTTP timeout + this
MAX_RETRY_AFTER = timedelta(hours=10)
RETRY_STATUSES = frozenset({408, 409, 429})
JITTER = 0.2
_Status = WebhookDelivery.Status
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end"
_RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
)


def payload_for(*, event_id: int | None, event_type: str, timestamp: str, data: Any) -> dict:
    """The body of a webhook: the WebSocket event's shape (system.realtime.log LoggedEvent)."""
    return {"id": event_id, "type": event_type, "timestamp": timestamp, "data": data}


def endpoint_kick(endpoint_id: Any) -> None:
    """Queue the delivery task of one endpoint. Call inside the transaction that created or
    reset its deliveries: the task is published after commit (system.kernel.outbox)."""
    from system.notify.webhook_tasks import webhooks_deliver  # the task module imports this one

    enqueue(webhooks_deliver, str(endpoint_id))


def lock_key(endpoint_id: Any) -> str:
    return f"371os:webhooks:deliver:{endpoint_id}"


def kick_debounce_key(endpoint_id: Any) -> str:
    """Set by the dispatcher's sweep when it queues the endpoint's task; cleared when it runs."""
    return f"371os:webhooks:kicked:{endpoint_id}"


def _lease() -> timedelta:
    """How long one attempt may take: the HTTP timeout, plus resolving and recording."""
    return timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS + LEASE_MARGIN_SECONDS)


def _lock_ttl_ms() -> int:
    return int(_lease().total_seconds() * 1000)


def _backoff(attempts: int, status: int | None, retry_after: str | None, now: datetime):
    """When to try again after the `attempts`-th attempt failed, or None: no retries left."""
    schedule = settings.WEBHOOK_RETRY_SECONDS
    if attempts > len(schedule):
        return None
    delay = timedelta(seconds=schedule[attempts - 1] * random.uniform(1 - JITTER, 1 + JITTER))  # noqa: S311
    if status in (429, 503) and retry_after:
        asked = _retry_after(retry_after, now)
        if asked is not None:
            delay = max(delay, min(asked, MAX_RETRY_AFTER))
    return now + delay


def _retry_after(value: str, now: datetime) -> timedelta | None:
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(moment - now, timedelta(0)) if moment.tzinfo else None


def _secrets(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    secrets = [endpoint.secret]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and expires > now:
        secrets.append(endpoint.previous_secret)
    return secrets


def _body(delivery: WebhookDelivery) -> bytes:
    return json.dumps(
        delivery.payload, cls=IsoZJSONEncoder, separators=(",", ":"), ensure_ascii=False
    ).encode()


def _post(endpoint: WebhookEndpoint, delivery: WebhookDelivery, now: datetime) -> PostResult:
    """The request, with no transaction open: the URL checked again (DNS rebinding) and the
    connection pinned to an address that passed."""
    try:
        checked = webhook_url_resolve(endpoint.url)
    except WebhookUrlRefused as refused:
        return PostResult(None, error=f"refused: {refused.reason}"[:500])
    body = _body(delivery)
    headers = {
        **signed_headers(
            _secrets(endpoint, now),
            message_id=delivery.message_id,
            timestamp=int(time.time()),  # the wall clock: receivers check it
            body=body,
        ),
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }
    return pinned_post(
        checked,
        body=body,
        headers=headers,
        timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
        max_bytes=settings.WEBHOOK_MAX_RESPONSE_BYTES,
    )


def _claim_attempt(delivery: WebhookDelivery, now: datetime) -> WebhookAttempt | None:
    """Write the next attempt and count it, committed before the request; None when another
    run took this attempt (the lock was lost) or the delivery changed meanwhile."""
    with transaction.atomic():
        # An attempt left unfinished by a killed worker.
        WebhookAttempt.objects.filter(delivery=delivery, finished_at__isnull=True).update(
            finished_at=now, error="interrupted"
        )
        # The attempt's lease: until its request can have ended, the delivery is not due, so
        # no other run (the lock lost) tries it meanwhile; if this worker dies, it is due then.
        claimed = WebhookDelivery.objects.filter(
            pk=delivery.pk, status=WebhookDelivery.Status.PENDING, attempts=delivery.attempts
        ).update(attempts=F("attempts") + 1, next_attempt_at=now + _lease())
        if not claimed:
            return None
        delivery.attempts += 1
        return WebhookAttempt.objects.create(
            delivery=delivery, number=delivery.attempts, started_at=now
        )


def _record(
    endpoint: WebhookEndpoint,
    delivery: WebhookDelivery,
    attempt: WebhookAttempt,
    result: PostResult,
    latency_ms: float,
    now: datetime,
) -> str:
    """Record the outcome; returns the delivery's status."""
    status = result.status
    error = result.error or (f"HTTP {status}" if status is not None and status >= 300 else "")
    if status is not None and 200 <= status < 300:
        outcome, retry_at = _Status.SUCCEEDED, None
    elif status is None or status >= 500 or status in RETRY_STATUSES:
        retry_at = _backoff(delivery.attempts, status, result.retry_after, now)
        outcome = _Status.PENDING if retry_at is not None else _Status.FAILED
    else:
        outcome, retry_at = _Status.FAILED, None
    with transaction.atomic():
        WebhookAttempt.objects.filter(pk=attempt.pk).update(
            finished_at=now, status_code=status, latency_ms=latency_ms, error=error[:500]
        )
        fields: dict[str, Any] = {
            "status": outcome,
            "last_status_code": status,
            "last_latency_ms": latency_ms,
            "last_error": error[:500],
            "finished_at": None if outcome == _Status.PENDING else now,
        }
        if retry_at is not None:
            fields["next_attempt_at"] = retry_at
        WebhookDelivery.objects.filter(pk=delivery.pk, status=_Status.PENDING).update(**fields)
        if outcome == _Status.SUCCEEDED:
            WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=False).update(
                failing_since=None
            )
        else:
            _endpoint_failed(endpoint, now)
    return outcome


def _endpoint_failed(endpoint: WebhookEndpoint, now: datetime) -> None:
    """Inside the outcome's transaction: start the endpoint's run of failures, or disable it
    when the run has lasted WEBHOOK_DISABLE_AFTER."""
    WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(
        failing_since=now
    )
    since = WebhookEndpoint.objects.filter(pk=endpoint.pk).values_list("failing_since", flat=True)
    failing_since = since.first()
    if failing_since is None or now - failing_since < settings.WEBHOOK_DISABLE_AFTER:
        return
    hours = int(settings.WEBHOOK_DISABLE_AFTER.total_seconds() // 3600)
    reason = f"failing for {hours} h without a success"
    disabled = WebhookEndpoint.objects.filter(pk=endpoint.pk, enabled=True).update(
        enabled=False, disabled_reason=reason
    )
    if disabled:
        endpoint.enabled = False
        _alert_disabled(endpoint, reason, failing_since)


def _alert_disabled(endpoint: WebhookEndpoint, reason: str, failing_since: datetime) -> None:
    alerts.alert_send(
        recipient_id=endpoint.owner_id,
        kind=alerts.WEBHOOK_DISABLED,
        subject_key=str(endpoint.endpoint_id),
        context={
            "endpoint_id": str(endpoint.endpoint_id),
            "url": endpoint.url,
            "reason": reason,
            "failing_since": iso_z(failing_since),
        },
    )


def _deliver_head(endpoint_id: uuid.UUID, now: datetime) -> str | None:
    """Try the endpoint's oldest pending delivery if it is due. Returns its new status, or
    None when there is nothing to do now (no endpoint, disabled, nothing due, lost a race)."""
    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id, enabled=True).first()
    if endpoint is None:
        return None
    delivery = (
        WebhookDelivery.objects.filter(endpoint=endpoint, status=WebhookDelivery.Status.PENDING)
        .order_by("id")
        .first()
    )
    if delivery is None or delivery.next_attempt_at > now:
        return None
    attempt = _claim_attempt(delivery, now)
    if attempt is None:
        return None
    started = time.monotonic()
    result = _post(endpoint, delivery, now)
    latency_ms = round((time.monotonic() - started) * 1000, 1)
    return _record(endpoint, delivery, attempt, result, latency_ms, now)


def endpoint_deliver(
    endpoint_id: Any,
    *,
    now: datetime | None = None,
    max_deliveries: int = RUN_DELIVERIES,
    max_seconds: float = RUN_SECONDS,
) -> int:
    """The delivery task's body: deliver the endpoint's due deliveries in order, under its
    lock. Returns how many attempts were made (0 when another run holds the lock). `now`
    fixes the scheduling clock (tests); by default each delivery reads the time."""
    try:
        endpoint_id = uuid.UUID(str(endpoint_id))
    except ValueError:
        return 0
    client = get_redis()
    client.delete(kick_debounce_key(endpoint_id))
    token = uuid.uuid4().hex
    if not client.set(lock_key(endpoint_id), token, nx=True, px=_lock_ttl_ms()):
        return 0
    attempts = 0
    began = time.monotonic()
    more = False
    try:
        while True:
            if attempts >= max_deliveries or time.monotonic() - began >= max_seconds:
                more = True
                break
            if not client.eval(_RENEW, 1, lock_key(endpoint_id), token, _lock_ttl_ms()):
                return attempts  # the lock expired and another run has it
            outcome = _deliver_head(endpoint_id, now or timezone.now())
            if outcome is None:
                break
            attempts += 1
            if outcome == WebhookDelivery.Status.PENDING:
                break  # waiting for its retry: it holds back the later ones
    finally:
        client.eval(_RELEASE, 1, lock_key(endpoint_id), token)
    if more:
        endpoint_kick(endpoint_id)
    return attempts

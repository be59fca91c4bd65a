"""Webhook endpoints and their deliveries, as the owner manages them (the REST API and the
admin call these): create, change, delete, rotate the secret, send a test, retry a delivery.

An endpoint belongs to the principal that made it: its user, and the API key when a key made
it (the dispatcher bounds what it receives by that key's roles). Others get 404, an admin sees
all (system.kernel.access). The secret leaves this module only in the return value of
`webhook_create` and `webhook_secret_rotate`, for the one answer that shows it.

No HTTP here: the URL check resolves the host (the SSRF guard), outside any transaction, and
deliveries go out from the worker (system.notify.delivery).
"""

import uuid
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from system.eventlog.events import EVENT_TYPES
from system.kernel.access import get_visible_or_404, visible_to
from system.kernel.exceptions import Conflict, DomainError, NotFound, ValidationFailed
from system.kernel.principal import Principal
from system.kernel.timefmt import iso_z
from system.models import WebhookDelivery, WebhookEndpoint
from system.notify.delivery import endpoint_kick, payload_for
from system.notify.signing import secret_generate
from system.notify.ssrf import webhook_url_check

ANY_EVENT = "*"
TEST_EVENT = "webhook.test"
# What an endpoint may subscribe to: what the services log, the email alerts' events, the test.
WEBHOOK_EVENT_TYPES = frozenset(EVENT_TYPES | {"alert_sent", TEST_EVENT})
FILTER_KEYS = ("agent_id", "channel_id", "session_id")
MAX_EVENT_TYPES = 50
MAX_DESCRIPTION = 500
DISABLED_BY_OWNER = "Disabled by its owner."
_UNSET: Any = object()


class WebhookNotFound(NotFound):
    code = "webhook_not_found"
    message = "Webhook endpoint not found."


class DeliveryNotFound(NotFound):
    code = "delivery_not_found"
    message = "Webhook delivery not found."


class WebhookLimitReached(DomainError):
    code = "webhook_limit_reached"
    http_status = 422
    message = "The owner has as many webhook endpoints as allowed."


class DeliveryAlreadyScheduled(Conflict):
    code = "delivery_already_scheduled"
    message = "The delivery is pending: it is already scheduled."


def event_types_valid() -> list[str]:
    return sorted(WEBHOOK_EVENT_TYPES)


def _event_types_clean(event_types: Any) -> list[str]:
    valid = event_types_valid()
    if not isinstance(event_types, list) or not event_types:
        raise ValidationFailed(
            "event_types must be a non-empty list.",
            details={"event_types": [f'A list of event types, or ["*"]. Valid: {valid}.']},
        )
    if len(event_types) > MAX_EVENT_TYPES:
        raise ValidationFailed(
            f"event_types has more than {MAX_EVENT_TYPES} entries.",
            details={"event_types": [f"At most {MAX_EVENT_TYPES} entries."]},
        )
    if event_types == [ANY_EVENT]:
        return [ANY_EVENT]
    unknown = [t for t in event_types if not isinstance(t, str) or t not in WEBHOOK_EVENT_TYPES]
    if unknown:
        shown = ", ".join(repr(t)[:66] for t in unknown[:5])
        raise ValidationFailed(
            f"Unknown event types: {shown}.",
            details={
                "event_types": [f'Each one of {valid}, or exactly ["*"].'],
                "valid_event_types": valid,
            },
        )
    return list(dict.fromkeys(event_types))  # without repeats, in the order given


def _filter_clean(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationFailed(
            "filter must be an object.", details={"filter": [f"Keys: {list(FILTER_KEYS)}."]}
        )
    errors = {}
    cleaned = {}
    for key, item in value.items():
        if key not in FILTER_KEYS:
            errors[f"filter.{key}"[:80]] = [f"Unknown key; allowed: {list(FILTER_KEYS)}."]
            continue
        if item is None:
            continue
        try:
            cleaned[key] = str(uuid.UUID(item)) if isinstance(item, str) else None
        except ValueError:
            cleaned[key] = None
        if cleaned[key] is None:
            errors[f"filter.{key}"] = ["Must be a UUID."]
    if errors:
        raise ValidationFailed("The filter is invalid.", details=errors)
    return cleaned


def _url_clean(value: Any) -> str:
    """The URL's shape; whether it may receive webhooks is the SSRF guard's to say."""
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        raise ValidationFailed("The url is invalid.", details={"url": ["A non-blank string."]})
    value = value.strip()
    webhook_url_check(value)
    return value


def _description_clean(value: Any) -> str:
    if not isinstance(value, str) or len(value) > MAX_DESCRIPTION or "\x00" in value:
        raise ValidationFailed(
            "The description is invalid.",
            details={"description": [f"Text of at most {MAX_DESCRIPTION} characters."]},
        )
    return value.strip()


def webhooks_visible(*, principal: Principal) -> QuerySet[WebhookEndpoint]:
    """The endpoints the principal may see, newest first."""
    return visible_to(WebhookEndpoint.objects.all(), principal=principal).order_by(
        "-created_at", "-endpoint_id"
    )


def webhook_get(*, principal: Principal, webhook_id: Any) -> WebhookEndpoint:
    try:
        pk = uuid.UUID(str(webhook_id))
    except ValueError:
        raise WebhookNotFound() from None
    return get_visible_or_404(
        WebhookEndpoint.objects.all(),
        principal=principal,
        not_found=WebhookNotFound,
        endpoint_id=pk,
    )


def deliveries_of(*, endpoint: WebhookEndpoint) -> QuerySet[WebhookDelivery]:
    return WebhookDelivery.objects.filter(endpoint=endpoint)


def delivery_get(*, endpoint: WebhookEndpoint, delivery_id: Any) -> WebhookDelivery:
    try:
        pk = int(str(delivery_id))
    except ValueError:
        raise DeliveryNotFound() from None
    if not 0 < pk < 2**63:
        raise DeliveryNotFound()
    rows = list(deliveries_of(endpoint=endpoint).filter(pk=pk).prefetch_related("tries")[:1])
    if not rows:
        raise DeliveryNotFound()
    return rows[0]


def webhook_create(
    *,
    principal: Principal,
    url: Any,
    event_types: Any,
    filter: Any = None,
    description: str = "",
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint of the principal and its secret (to show once). Every value is checked
    before anything is written; the URL by the SSRF guard, which resolves its host."""
    event_types = _event_types_clean(event_types)
    filter_ = _filter_clean(filter)
    description = _description_clean(description)
    url = _url_clean(url)
    secret = secret_generate()
    with transaction.atomic():
        # The owner's row, locked: two creates at once cannot both pass the cap.
        get_user_model().objects.select_for_update().filter(pk=principal.user_id).exists()
        owned = WebhookEndpoint.objects.filter(owner_id=principal.user_id).count()
        if owned >= settings.WEBHOOK_MAX_ENDPOINTS_PER_OWNER:
            limit = settings.WEBHOOK_MAX_ENDPOINTS_PER_OWNER
            raise WebhookLimitReached(
                f"At most {limit} webhook endpoints per owner; delete one first.",
                details={"limit": limit},
            )
        endpoint = WebhookEndpoint.objects.create(
            owner_id=principal.user_id,
            api_key_id=principal.api_key_id,
            url=url,
            event_types=event_types,
            filter=filter_,
            description=description,
            secret=secret,
        )
    return endpoint, secret


def webhook_update(
    *,
    endpoint: WebhookEndpoint,
    url: Any = _UNSET,
    event_types: Any = _UNSET,
    filter: Any = _UNSET,
    description: Any = _UNSET,
    enabled: Any = _UNSET,
) -> WebhookEndpoint:
    """Change what is given. A new URL is checked again; re-enabling clears why the endpoint
    was disabled and its run of failures, and wakes its pending deliveries."""
    changes: dict[str, Any] = {}
    if event_types is not _UNSET:
        changes["event_types"] = _event_types_clean(event_types)
    if filter is not _UNSET:
        changes["filter"] = _filter_clean(filter)
    if description is not _UNSET:
        changes["description"] = _description_clean(description)
    if url is not _UNSET:
        changes["url"] = _url_clean(url)
    if enabled is not _UNSET and not isinstance(enabled, bool):
        raise ValidationFailed("enabled must be a boolean.", details={"enabled": ["A boolean."]})
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        if enabled is not _UNSET and enabled != endpoint.enabled:
            changes["enabled"] = enabled
            changes["disabled_reason"] = "" if enabled else DISABLED_BY_OWNER
            if enabled:
                changes["failing_since"] = None
        for name, value in changes.items():
            setattr(endpoint, name, value)
        endpoint.save()
        if changes.get("enabled"):
            endpoint_kick(endpoint.pk)
    return endpoint


def webhook_delete(*, endpoint: WebhookEndpoint) -> None:
    with transaction.atomic():
        WebhookEndpoint.objects.filter(pk=endpoint.pk).delete()


def webhook_secret_rotate(*, endpoint: WebhookEndpoint) -> tuple[WebhookEndpoint, str]:
    """A new secret (returned, to show once); the current one keeps signing, beside it, for
    WEBHOOK_SECRET_GRACE, so receivers can switch without losing a delivery."""
    secret = secret_generate()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_expires_at = timezone.now() + settings.WEBHOOK_SECRET_GRACE
        endpoint.secret = secret
        endpoint.save(
            update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"]
        )
    return endpoint, secret


def webhook_test_send(*, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """Queue a `webhook.test` delivery to the endpoint (behind its pending ones)."""
    now = timezone.now()
    data = {
        "endpoint_id": str(endpoint.pk),
        "message": "A test event from 371OS: this endpoint receives webhooks.",
    }
    with transaction.atomic():
        delivery = WebhookDelivery.objects.create(
            endpoint=endpoint,
            event_id=None,
            event_type=TEST_EVENT,
            message_id=f"msg_test_{uuid.uuid4().hex}",
            payload=payload_for(
                event_id=None, event_type=TEST_EVENT, timestamp=iso_z(now), data=data
            ),
            next_attempt_at=now,
            created_at=now,
        )
        endpoint_kick(endpoint.pk)
    return delivery


def webhook_delivery_retry(
    *, delivery: WebhookDelivery, now: datetime | None = None
) -> WebhookDelivery:
    """Send a finished delivery (failed or succeeded) again, now: pending again, its attempts
    kept. A pending one is already scheduled: 409."""
    now = now or timezone.now()
    with transaction.atomic():
        claimed = WebhookDelivery.objects.filter(pk=delivery.pk).exclude(
            status=WebhookDelivery.Status.PENDING
        )
        updated = claimed.update(
            status=WebhookDelivery.Status.PENDING, next_attempt_at=now, finished_at=None
        )
        if not updated:
            raise DeliveryAlreadyScheduled()
        endpoint_kick(delivery.endpoint_id)
    delivery.refresh_from_db()
    return delivery

"""Webhook endpoints for the delivery tests, made the way the API makes them (the creating
key, its owner) without going through the API."""

from datetime import timedelta

from django.utils import timezone

from system.auth.services import api_key_create
from system.models import WebhookEndpoint
from system.notify.signing import secret_generate


def endpoint_for_key(user, *, roles: list[str], url: str, **fields) -> WebhookEndpoint:
    """An endpoint made by a new API key of `user` holding `roles`."""
    key, _ = api_key_create(name="hooks", owner=user, roles=roles)
    return endpoint_make(owner=user, api_key=key, url=url, **fields)


def endpoint_make(*, owner, url: str, api_key=None, **fields) -> WebhookEndpoint:
    fields.setdefault("event_types", ["*"])
    # Created a moment ago: it receives the events logged from now on.
    fields.setdefault("created_at", timezone.now() - timedelta(seconds=1))
    return WebhookEndpoint.objects.create(
        owner=owner, api_key=api_key, url=url, secret=secret_generate(), **fields
    )


def agent_event(name: str) -> None:
    """Log one `agent_status_update` (an agent created): visible to every role reading agents."""
    from agents.services import agent_create

    agent_create(name=name, type="ceo_mimi")

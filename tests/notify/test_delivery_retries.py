"""Retries on a controlled clock: backoff with jitter, Retry-After, final 4xx, strict order per
endpoint, and the endpoint disabled (its owner alerted) after WEBHOOK_DISABLE_AFTER failing."""

from datetime import timedelta

import pytest
from django.utils import timezone

from system.models import AlertSent, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from system.notify.delivery import endpoint_deliver
from system.notify.dispatch import webhooks_dispatch
from tests.notify.receiver import Receiver, Reply
from tests.notify.webhook_factories import agent_event, endpoint_for_key

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


@pytest.fixture(autouse=True)
def _local_receivers(settings):
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.WEBHOOK_ALLOW_PRIVATE = True
    settings.WEBHOOK_RETRY_SECONDS = [5, 300, 1800]


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


@pytest.fixture
def endpoint(make_user, receiver):
    made = endpoint_for_key(
        make_user("owner", email="owner@example.com"), roles=["agent_manager"], url=receiver.url
    )
    receiver.secrets = [made.secret]
    webhooks_dispatch()  # the cursor starts here
    return made


def events(count: int) -> list[WebhookDelivery]:
    for n in range(count):
        agent_event(f"agent-{n}")
    webhooks_dispatch()
    return list(WebhookDelivery.objects.order_by("id"))


def head() -> WebhookDelivery:
    return WebhookDelivery.objects.order_by("id").first()


def test_three_500s_then_a_200_deliver_at_the_fourth_attempt_each_after_its_backoff(
    endpoint, receiver
):
    receiver.script(Reply(500), Reply(500), Reply(500))
    (delivery,) = events(1)
    now = timezone.now()

    for number, backoff in enumerate([5, 300, 1800], start=1):
        endpoint_deliver(endpoint.endpoint_id, now=now)
        assert len(receiver.received) == number
        due = head().next_attempt_at
        assert (
            now + timedelta(seconds=backoff * 0.8) <= due <= now + timedelta(seconds=backoff * 1.2)
        )
        endpoint_deliver(endpoint.endpoint_id, now=due - timedelta(milliseconds=1))
        assert len(receiver.received) == number  # not before its time
        now = due
    endpoint_deliver(endpoint.endpoint_id, now=now)

    delivery.refresh_from_db()
    assert delivery.status == "succeeded"
    assert delivery.attempts == 4
    assert [r.answered for r in receiver.received] == [500, 500, 500, 200]
    assert set(receiver.ids()) == {delivery.message_id}
    assert all(r.verified_with == [0] for r in receiver.received)
    tries = list(delivery.tries.values_list("number", "status_code"))
    assert tries == [(1, 500), (2, 500), (3, 500), (4, 200)]
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None  # cleared by the success


def test_retries_run_out_and_the_delivery_fails_for_good(endpoint, receiver):
    receiver.script(*[Reply(503)] * 4)
    (delivery,) = events(1)
    now = timezone.now()

    for _ in range(5):
        endpoint_deliver(endpoint.endpoint_id, now=now)
        now += timedelta(hours=1)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 4, 503)
    assert len(receiver.received) == 4


def test_retry_after_is_honoured_when_longer_than_the_backoff(endpoint, receiver):
    receiver.script(Reply(429, headers={"Retry-After": "120"}))
    events(1)
    now = timezone.now()

    endpoint_deliver(endpoint.endpoint_id, now=now)
    endpoint_deliver(endpoint.endpoint_id, now=now + timedelta(seconds=119))

    assert len(receiver.received) == 1
    assert head().next_attempt_at == now + timedelta(seconds=120)
    endpoint_deliver(endpoint.endpoint_id, now=now + timedelta(seconds=120))
    assert len(receiver.received) == 2
    assert head().status == "succeeded"


def test_a_retry_after_beyond_ten_hours_is_capped(endpoint, receiver):
    receiver.script(Reply(503, headers={"Retry-After": str(7 * 24 * 3600)}))
    events(1)
    now = timezone.now()

    endpoint_deliver(endpoint.endpoint_id, now=now)

    assert head().next_attempt_at == now + timedelta(hours=10)


@pytest.mark.parametrize("status", [400, 404, 410, 302])
def test_a_4xx_or_a_redirect_is_final_and_does_not_hold_back_the_next(endpoint, receiver, status):
    receiver.script(Reply(status, headers={"Location": receiver.url + "/elsewhere"}))
    first, second = events(2)

    endpoint_deliver(endpoint.endpoint_id, now=timezone.now())

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.attempts, first.last_status_code) == ("failed", 1, status)
    assert first.finished_at is not None
    assert second.status == "succeeded"
    assert [r.message_id for r in receiver.received] == [first.message_id, second.message_id]


@pytest.mark.parametrize("status", [408, 409, 500, 502])
def test_a_retryable_answer_holds_back_the_endpoints_later_deliveries(endpoint, receiver, status):
    receiver.script(Reply(status))
    first, second = events(2)
    now = timezone.now()

    endpoint_deliver(endpoint.endpoint_id, now=now)

    assert len(receiver.received) == 1
    second.refresh_from_db()
    assert (second.status, second.attempts) == ("pending", 0)
    endpoint_deliver(endpoint.endpoint_id, now=now + timedelta(seconds=7))
    assert receiver.ids() == [first.message_id, first.message_id, second.message_id]


def test_an_endpoint_failing_for_three_days_is_disabled_and_its_owner_alerted(
    endpoint, receiver, settings
):
    settings.WEBHOOK_RETRY_SECONDS = [3600] * 100
    receiver.script(*[Reply(500)] * 100)
    events(1)
    start = timezone.now()

    endpoint_deliver(endpoint.endpoint_id, now=start)
    endpoint.refresh_from_db()
    assert endpoint.failing_since == start
    endpoint_deliver(endpoint.endpoint_id, now=start + timedelta(hours=71))
    endpoint.refresh_from_db()
    assert endpoint.enabled
    endpoint_deliver(endpoint.endpoint_id, now=start + timedelta(hours=73))

    endpoint.refresh_from_db()
    assert not endpoint.enabled
    assert "72 h" in endpoint.disabled_reason
    alert = AlertSent.objects.get(kind="webhook_disabled")
    assert alert.recipient_id == endpoint.owner_id
    assert alert.subject_key == str(endpoint.endpoint_id)
    assert alert.context["url"] == endpoint.url
    sent = len(receiver.received)
    agent_event("after-disable")
    webhooks_dispatch(now=start + timedelta(hours=80))
    endpoint_deliver(endpoint.endpoint_id, now=start + timedelta(hours=80))
    assert len(receiver.received) == sent  # a disabled endpoint gets nothing
    assert WebhookDelivery.objects.count() == 1


def test_an_attempt_left_unfinished_by_a_killed_worker_is_marked_interrupted(endpoint, receiver):
    (delivery,) = events(1)
    # What a worker killed during the request leaves: the attempt counted, never finished.
    WebhookDelivery.objects.filter(pk=delivery.pk).update(attempts=1)
    WebhookAttempt.objects.create(delivery=delivery, number=1)

    endpoint_deliver(endpoint.endpoint_id, now=timezone.now())

    tries = list(delivery.tries.order_by("number").values_list("number", "error", "status_code"))
    assert tries == [(1, "interrupted", None), (2, "", 200)]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("succeeded", 2)
    assert WebhookAttempt.objects.filter(finished_at__isnull=True).count() == 0
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).enabled

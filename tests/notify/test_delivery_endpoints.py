"""Delivery per endpoint: secrets during a rotation's grace, one slow endpoint never delaying
another, one run per endpoint at a time, and the URL checked again at delivery."""

import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from system.kernel.redis_client import get_redis
from system.models import OutboxMessage, WebhookDelivery
from system.notify.delivery import endpoint_deliver, lock_key
from system.notify.dispatch import webhooks_dispatch
from system.notify.webhooks import webhook_secret_rotate
from tests.notify.receiver import Receiver, Reply
from tests.notify.webhook_factories import agent_event, endpoint_for_key

pytestmark = pytest.mark.embedded


@pytest.fixture(autouse=True)
def _local_receivers(settings):
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.WEBHOOK_ALLOW_PRIVATE = True


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


@pytest.fixture
def endpoint(db, make_user, receiver):
    made = endpoint_for_key(make_user(), roles=["agent_manager"], url=receiver.url)
    receiver.secrets = [made.secret]
    webhooks_dispatch()
    return made


@pytest.mark.django_db
def test_during_the_grace_both_secrets_sign_and_after_it_only_the_new_one(endpoint, receiver):
    old = endpoint.secret
    endpoint, new = webhook_secret_rotate(endpoint=endpoint)
    receiver.secrets = [old, new]
    agent_event("one")
    webhooks_dispatch()

    endpoint_deliver(endpoint.endpoint_id)
    agent_event("two")
    webhooks_dispatch()
    endpoint_deliver(endpoint.endpoint_id, now=timezone.now() + timedelta(hours=25))

    during, after = receiver.received
    assert during.verified_with == [0, 1]
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert after.verified_with == [1]
    assert during.headers["user-agent"] == "371OS-Webhooks/1"
    assert during.headers["content-type"] == "application/json"


@pytest.mark.django_db(transaction=True)
def test_an_endpoint_timing_out_does_not_hold_up_another_endpoints_delivery(
    make_user, receiver, settings
):
    settings.WEBHOOK_TIMEOUT_SECONDS = 1.5
    release = threading.Event()
    with Receiver() as slow_receiver:
        slow_receiver.script(Reply(200, block=release))
        slow = endpoint_for_key(make_user(), roles=["agent_manager"], url=slow_receiver.url)
        fast = endpoint_for_key(make_user(), roles=["agent_manager"], url=receiver.url)
        webhooks_dispatch()
        agent_event("one")
        webhooks_dispatch()
        # Each endpoint has its own task.
        queued = {tuple(args) for args in OutboxMessage.objects.values_list("args", flat=True)}
        assert {(str(slow.endpoint_id),), (str(fast.endpoint_id),)} <= queued
        slow_run = threading.Thread(target=endpoint_deliver, args=(slow.endpoint_id,))
        started = time.monotonic()
        slow_run.start()
        assert slow_receiver.arrived.wait(5)

        endpoint_deliver(fast.endpoint_id)

        assert len(receiver.received) == 1  # while the slow one still waits for its answer
        assert slow_run.is_alive()
        slow_run.join(10)
        elapsed = time.monotonic() - started
        release.set()
    assert elapsed < 4
    slow_delivery = WebhookDelivery.objects.get(endpoint=slow)
    assert (slow_delivery.status, slow_delivery.last_error) == ("pending", "timeout")
    assert slow_delivery.tries.get().error == "timeout"
    assert WebhookDelivery.objects.get(endpoint=fast).status == "succeeded"


@pytest.mark.django_db
def test_a_run_holding_the_endpoint_lock_keeps_a_second_run_out(endpoint, receiver):
    agent_event("one")
    webhooks_dispatch()
    client = get_redis()
    client.set(lock_key(endpoint.endpoint_id), "another-run", px=60_000)
    try:
        assert endpoint_deliver(endpoint.endpoint_id) == 0
        assert receiver.received == []
    finally:
        client.delete(lock_key(endpoint.endpoint_id))

    assert endpoint_deliver(endpoint.endpoint_id) == 1
    assert len(receiver.received) == 1
    assert not client.exists(lock_key(endpoint.endpoint_id))  # released at the end


@pytest.mark.django_db
def test_the_address_is_checked_again_at_delivery(endpoint, receiver, settings):
    agent_event("one")
    webhooks_dispatch()
    settings.WEBHOOK_ALLOW_PRIVATE = False  # 127.0.0.1 is refused from now on

    endpoint_deliver(endpoint.endpoint_id)

    assert receiver.received == []
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "pending"
    assert "non-public address" in delivery.last_error
    assert delivery.tries.get().status_code is None


@pytest.mark.django_db
def test_a_run_is_bounded_and_queues_itself_again(endpoint, receiver):
    for n in range(3):
        agent_event(f"agent-{n}")
    webhooks_dispatch()
    OutboxMessage.objects.all().delete()

    made = endpoint_deliver(endpoint.endpoint_id, max_deliveries=2)

    assert made == 2
    assert len(receiver.received) == 2
    assert list(OutboxMessage.objects.values_list("task_name", "args")) == [
        ("notify.webhooks_deliver", [str(endpoint.endpoint_id)])
    ]
    endpoint_deliver(endpoint.endpoint_id)
    assert len(receiver.received) == 3

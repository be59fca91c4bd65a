"""Webhooks through the real processes: an endpoint made through the API receives the events
the stack logs, signed (beat dispatches, the worker delivers); and a worker SIGKILLed in the
middle of a delivery is replaced, the event still arrives, at most twice, and the delivery's log
records both attempts."""

import threading
import time

import httpx
import pytest
from rest_framework.test import APIClient

from system.auth.services import api_key_create
from system.models import LogCursor, WebhookDelivery
from system.notify.dispatch import webhooks_dispatch, webhooks_sweep
from tests.e2e.conftest import run_stack
from tests.e2e.test_faults_worker import QUEUE, Workers, on_our_queue, wait_for, worker_env
from tests.notify.receiver import Receiver, Reply
from tests.notify.webhook_factories import agent_event

pytestmark = [pytest.mark.e2e, pytest.mark.embedded]

WAIT = 30
LOCAL = {"WEBHOOK_ALLOW_PRIVATE": "1", "WEBHOOK_ALLOW_HTTP": "1"}
# Queues of this test's stack alone: the session-wide stack (same database and Redis) would
# otherwise take some of its beat's tasks, and deliver without LOCAL.
OWN_QUEUES = {"CELERY_QUEUE": "webhooks-e2e", "WEBHOOK_QUEUE": "webhooks-e2e-deliveries"}


def test_an_endpoint_made_through_the_api_receives_the_stacks_events_signed(
    transactional_db, make_user, tmp_path
):
    user = make_user("hooks", roles=("agent_manager",))
    _, key = api_key_create(name="hooks", owner=user, roles=["agent_manager"])
    with (
        Receiver() as receiver,
        run_stack(tmp_path, WEBHOOK_DISPATCH_SECONDS="0.5", **OWN_QUEUES, **LOCAL) as stack,
        httpx.Client(base_url=stack.api_url, headers={"X-API-Key": key}, timeout=10) as api,
    ):
        made = api.post("/api/v1/webhooks", json={"url": receiver.url, "event_types": ["*"]})
        assert made.status_code == 201, made.text
        receiver.secrets = [made.json()["secret"]]
        # A new cursor starts at the log's head: events before beat's first run are not sent.
        deadline = time.monotonic() + WAIT
        while not LogCursor.objects.filter(name="webhooks").exists():
            assert time.monotonic() < deadline, stack.log_tail()
            time.sleep(0.1)

        agent = api.post("/api/v1/agents", json={"name": "hooked", "type": "ceo_mimi"})
        assert agent.status_code == 201, agent.text
        agent_id = agent.json()["agent_id"]
        assert api.post(f"/api/v1/agents/{agent_id}/start").status_code == 200
        arrived = receiver.wait_for(2, timeout=WAIT)
        state = list(WebhookDelivery.objects.values("status", "attempts", "last_error"))
        assert arrived, (state, list(LogCursor.objects.values()), stack.log_tail(200))
        deliveries = api.get(f"/api/v1/webhooks/{made.json()['id']}/deliveries").json()

    payloads = receiver.payloads()
    assert [p["type"] for p in payloads] == ["agent_status_update", "agent_status_update"]
    assert {p["data"]["agent_id"] for p in payloads} == {agent_id}
    assert payloads[-1]["data"]["status"] == "running"
    assert payloads[0]["id"] < payloads[1]["id"]
    assert all(r.verified_with == [0] for r in receiver.received)
    assert {d["status"] for d in deliveries["deliveries"]} == {"succeeded"}


def test_a_worker_killed_mid_delivery_is_replaced_and_the_event_arrives_at_most_twice(
    transactional_db, make_user, tmp_path, settings
):
    settings.WEBHOOK_ALLOW_PRIVATE = settings.WEBHOOK_ALLOW_HTTP = True
    # The test's own worker takes the deliveries too (the stack's go to the `webhooks` worker).
    settings.WEBHOOK_QUEUE = QUEUE
    user = make_user("hooks", roles=("agent_manager",))
    owner_key, key = api_key_create(name="hooks", owner=user, roles=["agent_manager"])
    api = APIClient()
    api.credentials(HTTP_X_API_KEY=key)
    release = threading.Event()
    log = tmp_path / "worker.log"
    # An attempt's lease is the timeout plus 5 s: the retry comes within about 7 s.
    env = worker_env(WEBHOOK_TIMEOUT_SECONDS="2", WEBHOOK_QUEUE=QUEUE, **LOCAL)
    with Receiver() as receiver:
        receiver.script(Reply(200, block=release))  # the first request never gets its answer
        made = api.post(
            "/api/v1/webhooks", {"url": receiver.url, "event_types": ["*"]}, format="json"
        )
        assert made.status_code == 201, made.content
        receiver.secrets = [made.json()["secret"]]
        on_our_queue(webhooks_dispatch)
        agent_event("watched")
        on_our_queue(webhooks_dispatch)
        try:
            with Workers(env, log) as workers:
                wait_for(receiver.arrived.is_set, WAIT, log, "the first request")
                workers.kill_and_replace()

                def retried() -> bool:
                    time.sleep(0.2)
                    on_our_queue(webhooks_sweep)  # beat's job: queue the due endpoint again
                    return (
                        len(receiver.received) >= 2
                        and WebhookDelivery.objects.filter(status="succeeded").exists()
                    )

                wait_for(retried, WAIT, log, "the delivery to be retried")
        finally:
            release.set()

    delivery = WebhookDelivery.objects.get()
    assert receiver.ids() == [delivery.message_id, delivery.message_id]
    assert all(r.verified_with == [0] for r in receiver.received)
    detail = api.get(f"/api/v1/webhooks/{made.json()['id']}/deliveries/{delivery.pk}").json()
    assert detail["status"] == "succeeded"
    assert detail["attempts"] == 2
    assert [(a["number"], a["status_code"], a["error"]) for a in detail["attempt_log"]] == [
        (1, None, "interrupted"),
        (2, 200, ""),
    ]
    assert owner_key.pk == delivery.endpoint.api_key_id

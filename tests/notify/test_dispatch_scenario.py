"""The event log is the source: a scripted scenario through the real services (an agent
started, messages answered by the agent, sessions expired by the sweep, a workflow run) reaches
each endpoint once per event it may see, in event-id order, signed, in the WebSocket's shape;
never an event of another key's private session or channel."""

from datetime import timedelta

import pytest
from django.db.models import Q
from django.utils import timezone

from agents.services import agent_create, agent_start
from config.celery import app as celery_app
from messaging.services import channel_create, message_post
from sessions_app import services as sessions
from sessions_app import timeouts
from sessions_app.sweep import sessions_sweep
from system.kernel.principal import principal_for_user
from system.kernel.timefmt import iso_z
from system.models import EventLogEntry, WebhookDelivery
from system.notify.delivery import endpoint_deliver
from system.notify.dispatch import webhooks_dispatch
from tests.notify.receiver import Receiver
from tests.notify.webhook_factories import endpoint_for_key, endpoint_make

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


@pytest.fixture(autouse=True)
def _local_receivers(settings):
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.WEBHOOK_ALLOW_PRIVATE = True


@pytest.fixture
def eager():
    saved = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = saved


def session_for(owner, agent, user_id):
    config = timeouts.validate({"timeoutMinutes": 5}, base=timeouts.defaults())
    return sessions.session_create(agent=agent, user_id=user_id, owner=owner, config=config)


def visible_to(user, *, channels, agents: bool) -> list[int]:
    """The ids the user may see, written out for this scenario: its own sessions' and
    workflows' events, its channels' events, agent events when its roles read agents."""
    only_channel = Q(channel_id__in=channels, owner_id__isnull=True, session_id__isnull=True)
    only_agent = Q(
        agent_id__isnull=False,
        channel_id__isnull=True,
        owner_id__isnull=True,
        session_id__isnull=True,
    )
    seen = Q(owner_id=user.pk) | only_channel | (only_agent if agents else Q(pk__in=[]))
    return list(
        EventLogEntry.objects.filter(seen).order_by("event_id").values_list("event_id", flat=True)
    )


def test_every_visible_event_of_the_scenario_arrives_once_in_order_signed(
    make_user, api_client, eager, django_capture_on_commit_callbacks
):
    alice = make_user("alice", roles=("agent_manager",))
    bob = make_user("bob", roles=("messaging",))
    root = make_user("root", is_superuser=True)
    receivers = {name: Receiver() for name in ("alice", "bob", "root")}
    for receiver in receivers.values():
        receiver.__enter__()
    try:
        endpoints = {
            "alice": endpoint_for_key(alice, roles=["agent_manager"], url=receivers["alice"].url),
            "bob": endpoint_for_key(bob, roles=["messaging"], url=receivers["bob"].url),
            "root": endpoint_make(owner=root, url=receivers["root"].url),
        }
        for name, endpoint in endpoints.items():
            receivers[name].secrets = [endpoint.secret]
        webhooks_dispatch()  # the cursor starts at the log's head: no history
        start = EventLogEntry.objects.order_by("-event_id").values_list("event_id", flat=True)
        first_id = (start.first() or 0) + 1

        with django_capture_on_commit_callbacks(execute=True):
            mimi = agent_start(agent=agent_create(name="ceo_mimi", type="ceo_mimi"))
            for role in ("cto_alex", "cpo_agent", "cmo_anova"):
                agent_start(agent=agent_create(name=role, type=role))
            private = channel_create(
                name="board", type="private", members=["ceo_mimi"], actor=alice
            )
            message_post(
                principal=principal_for_user(alice),
                channel=private,
                sender_id="alice",
                content="What should we focus on?",
            )
            alice_session = session_for(alice, mimi, "alice-visitor")
            bob_session = session_for(bob, mimi, "bob-visitor")
        sessions_sweep(now=timezone.now() + timedelta(minutes=6))
        api_client.force_authenticate(alice)
        with django_capture_on_commit_callbacks(execute=True):
            workflow = api_client.post(
                "/api/workflows",
                {"template": "Plugin Development", "input": {"plugin": "Slack"}},
                format="json",
            )
        assert workflow.status_code == 202
        celery_app.conf.task_always_eager = False  # the deliveries: run here, below

        result = webhooks_dispatch()
        for endpoint in endpoints.values():
            endpoint_deliver(endpoint.endpoint_id)

        logged = EventLogEntry.objects.filter(event_id__gte=first_id).order_by("event_id")
        expected = {
            "alice": visible_to(alice, channels=[private.channel_id], agents=True),
            "bob": visible_to(bob, channels=[], agents=True),
            "root": list(logged.values_list("event_id", flat=True)),
        }
        assert result.entries == len(expected["root"])
        for name, receiver in receivers.items():
            ids = [p["id"] for p in receiver.payloads()]
            assert ids == [i for i in expected[name] if i >= first_id], name
            assert all(r.verified_with == [0] for r in receiver.received)
            assert len(set(receiver.ids())) == len(ids)
        types = {p["type"] for p in receivers["alice"].payloads()}
        assert {"agent_status_update", "new_message", "session_update", "workflow_update"} <= types
        bob_sessions = {p["data"].get("session_id") for p in receivers["bob"].payloads()}
        assert str(alice_session.session_id) not in bob_sessions
        assert str(bob_session.session_id) in bob_sessions
        channels_seen_by_bob = {p["data"].get("channel_id") for p in receivers["bob"].payloads()}
        assert str(private.channel_id) not in channels_seen_by_bob
        entry = logged.get(event_id=receivers["root"].payloads()[0]["id"])
        assert receivers["root"].payloads()[0] == {
            "id": entry.event_id,
            "type": entry.event_type,
            "timestamp": iso_z(entry.created_at),
            "data": entry.payload,
        }
        assert not WebhookDelivery.objects.exclude(status="succeeded").exists()
    finally:
        for receiver in receivers.values():
            receiver.__exit__(None, None, None)


def test_a_second_dispatch_adds_nothing_and_a_redelivered_event_is_not_duplicated(make_user):
    alice = make_user("alice", roles=("agent_manager",))
    with Receiver() as receiver:
        endpoint = endpoint_for_key(alice, roles=["agent_manager"], url=receiver.url)
        webhooks_dispatch()
        agent_start(agent=agent_create(name="ceo_mimi", type="ceo_mimi"))

        first = webhooks_dispatch()
        second = webhooks_dispatch()
        endpoint_deliver(endpoint.endpoint_id)
        endpoint_deliver(endpoint.endpoint_id)

    assert first.deliveries == 2  # created, then running
    assert second.deliveries == 0
    assert len(receiver.received) == 2
    assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == 2

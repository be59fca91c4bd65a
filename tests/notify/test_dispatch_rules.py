"""What the dispatcher hands each endpoint: from its creation on, only the types and scope it
asked for, only what its principal may see now; and the sweep that makes retries happen."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agents.services import agent_create, agent_start
from messaging.services import channel_create, message_post_internal
from sessions_app import services as sessions
from sessions_app import timeouts
from system.kernel.redis_client import get_redis
from system.models import ApiKey, LogCursor, OutboxMessage, WebhookDelivery
from system.notify.delivery import kick_debounce_key, lock_key
from system.notify.dispatch import webhooks_dispatch, webhooks_sweep
from tests.eventlog.writers import postgresql
from tests.notify.webhook_factories import agent_event, endpoint_for_key, endpoint_make

URL = "http://127.0.0.1:9/hooks"  # never called here


@pytest.fixture
def mimi(db):
    return agent_start(agent=agent_create(name="ceo_mimi", type="ceo_mimi"))


def delivered(endpoint) -> list[str]:
    rows = WebhookDelivery.objects.filter(endpoint=endpoint).order_by("id")
    return [row.event_type for row in rows]


@pytest.mark.django_db
@pytest.mark.embedded
def test_a_new_cursor_starts_at_the_head_of_the_log(make_user):
    agent_event("before")
    endpoint = endpoint_for_key(make_user(), roles=["agent_manager"], url=URL)
    endpoint.created_at = timezone.now() - timedelta(days=1)
    endpoint.save()

    first = webhooks_dispatch()
    agent_event("after")
    second = webhooks_dispatch()

    assert (first.entries, second.entries) == (0, 1)
    assert delivered(endpoint) == ["agent_status_update"]
    assert LogCursor.objects.get(name="webhooks").last_event_id == second.cursor


@pytest.mark.django_db
@pytest.mark.embedded
def test_an_endpoint_gets_no_event_logged_before_it_was_created(make_user):
    webhooks_dispatch()
    agent_event("before")
    endpoint = endpoint_for_key(make_user(), roles=["agent_manager"], url=URL)
    endpoint.created_at = timezone.now()
    endpoint.save()

    webhooks_dispatch()

    assert delivered(endpoint) == []


@pytest.mark.django_db
@pytest.mark.embedded
def test_event_types_and_the_scope_filter_select_what_an_endpoint_receives(make_user, mimi):
    owner = make_user(roles=("admin",))
    channel = channel_create(name="c", type="public", members=[], actor=owner)
    other = channel_create(name="d", type="public", members=[], actor=owner)
    messages = endpoint_make(owner=owner, url=URL, event_types=["new_message"])
    of_channel = endpoint_make(owner=owner, url=URL, filter={"channel_id": str(channel.pk)})
    of_agent = endpoint_make(owner=owner, url=URL, filter={"agent_id": str(mimi.pk)})
    webhooks_dispatch()

    message_post_internal(channel=channel, sender_id="u", content="hi")
    message_post_internal(channel=other, sender_id="u", content="hi")
    agent_create(name="cash", type="cfo_cash")
    webhooks_dispatch()

    assert delivered(messages) == ["new_message", "new_message"]
    assert delivered(of_channel) == ["new_message"]
    assert delivered(of_agent) == []


@pytest.mark.django_db
@pytest.mark.embedded
def test_a_key_never_receives_another_users_session_or_private_channel(make_user, mimi):
    alice, bob = make_user("alice"), make_user("bob")
    endpoint = endpoint_for_key(alice, roles=["messaging"], url=URL)
    bobs = endpoint_for_key(bob, roles=["messaging"], url=URL)
    webhooks_dispatch()

    config = timeouts.validate({"timeoutMinutes": 5}, base=timeouts.defaults())
    session = sessions.session_create(agent=mimi, user_id="visitor", owner=bob, config=config)
    private = channel_create(name="p", type="private", members=["bob"], actor=bob)
    message_post_internal(channel=private, sender_id="bob", content="secret plans")
    sessions.session_end(session=session)
    agent_event("public")
    webhooks_dispatch()

    assert delivered(endpoint) == ["agent_status_update"]
    assert delivered(bobs) == [
        "session_update",
        "new_message",
        "session_update",
        "agent_status_update",
    ]


@pytest.mark.django_db
@pytest.mark.embedded
def test_revoked_expired_or_inactive_principals_and_disabled_endpoints_receive_nothing(
    make_user,
):
    revoked = endpoint_for_key(make_user(), roles=["admin"], url=URL)
    expired = endpoint_for_key(make_user(), roles=["admin"], url=URL)
    inactive_owner = make_user()
    inactive = endpoint_make(owner=inactive_owner, url=URL)
    disabled = endpoint_make(owner=make_user(roles=("admin",)), url=URL, enabled=False)
    live = endpoint_make(owner=make_user(roles=("admin",)), url=URL)
    ApiKey.objects.filter(pk=revoked.api_key_id).update(revoked_at=timezone.now())
    ApiKey.objects.filter(pk=expired.api_key_id).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    inactive_owner.is_active = False
    inactive_owner.save()
    webhooks_dispatch()

    agent_event("one")
    webhooks_dispatch()

    assert [delivered(e) for e in (revoked, expired, inactive, disabled)] == [[], [], [], []]
    assert delivered(live) == ["agent_status_update"]


@pytest.mark.django_db
@pytest.mark.embedded
def test_the_sweep_queues_endpoints_whose_head_is_due_once_until_their_task_runs(make_user):
    due = endpoint_make(owner=make_user(roles=("admin",)), url=URL)
    waiting = endpoint_make(owner=make_user(roles=("admin",)), url=URL)
    running = endpoint_make(owner=make_user(roles=("admin",)), url=URL)
    webhooks_dispatch()
    agent_event("one")
    agent_event("two")
    webhooks_dispatch()
    now = timezone.now()
    head = WebhookDelivery.objects.filter(endpoint=waiting).order_by("id").first()
    head.next_attempt_at = now + timedelta(minutes=5)  # waiting for its retry
    head.save()
    client = get_redis()
    client.set(lock_key(running.endpoint_id), "busy", px=60_000)
    OutboxMessage.objects.all().delete()
    try:
        first = webhooks_sweep(now=now)
        second = webhooks_sweep(now=now)
        client.delete(kick_debounce_key(due.endpoint_id))  # what the task does when it runs
        third = webhooks_sweep(now=now)
    finally:
        for endpoint in (due, waiting, running):
            client.delete(lock_key(endpoint.endpoint_id), kick_debounce_key(endpoint.endpoint_id))

    assert (first, second, third) == (1, 0, 1)
    queued = [args[0] for args in OutboxMessage.objects.values_list("args", flat=True)]
    assert queued == [str(due.endpoint_id), str(due.endpoint_id)]


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not postgresql(), reason="row locks: PostgreSQL (SQLite serialises writers)")
def test_a_dispatch_run_finding_the_cursor_locked_leaves_the_batch_to_the_holder(make_user):
    # A superuser: transactional tests flush the role groups the migrations made.
    endpoint = endpoint_make(owner=make_user(is_superuser=True), url=URL)
    webhooks_dispatch()
    agent_event("one")
    locked, release = threading.Event(), threading.Event()

    def hold_cursor():
        with transaction.atomic():
            LogCursor.objects.select_for_update().get(name="webhooks")
            locked.set()
            release.wait(10)
        connection.close()

    holder = threading.Thread(target=hold_cursor)
    holder.start()
    assert locked.wait(5)
    try:
        blocked = webhooks_dispatch()
    finally:
        release.set()
        holder.join()
    after = webhooks_dispatch()

    assert (blocked.entries, after.entries) == (0, 1)
    assert delivered(endpoint) == ["agent_status_update"]


@pytest.mark.django_db
@pytest.mark.embedded
def test_the_queries_of_a_run_do_not_grow_with_its_entries(make_user, mimi):
    alice = make_user("alice")
    for roles in (["messaging"], ["agent_manager"], ["admin"]):
        endpoint_for_key(alice, roles=roles, url=URL)
    channels = [
        channel_create(name=f"c{n}", type="private", members=["alice"], actor=alice)
        for n in range(2)
    ]
    webhooks_dispatch()

    def queries_for(count: int) -> int:
        for n in range(count):
            message_post_internal(channel=channels[n % 2], sender_id="alice", content=f"m{n}")
            agent_event(f"agent-{count}-{n}")
        with CaptureQueriesContext(connection) as queries:
            result = webhooks_dispatch()
        assert result.entries == 2 * count
        # Rows go in as one INSERT per batch of rows (SQLite takes ~90 rows a statement).
        return sum('system_webhookdelivery" (' not in q["sql"] for q in queries.captured_queries)

    small, large = queries_for(5), queries_for(40)
    assert small == large

"""The thread-wide cap on agent replies while the Redis counter is unreachable: a user's
message is still answered (it opens the count), agents answering agents wait for the counter,
and the cap holds across the outage."""

import pytest

from messaging.agent_replies import reply_slots_claim
from messaging.models import Channel
from messaging.services import agent_reply_store, channel_create, message_post_internal
from system.devserver.embedded_redis import free_port

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


@pytest.fixture
def channel(make_user, mimi):
    channel = channel_create(name="exec", type="public", members=["ceo_mimi"], actor=make_user("c"))
    Channel.objects.filter(pk=channel.pk).update(agent_replies_enabled=True)
    channel.refresh_from_db()
    return channel


@pytest.fixture
def redis_down(settings):
    """The kernel's Redis client pointed at a closed local port."""
    real = settings.REDIS_URL

    def down() -> None:
        settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"

    def up() -> None:
        settings.REDIS_URL = real

    yield down, up
    up()


def test_a_users_message_is_granted_its_replies_while_the_counter_is_down(
    channel, redis_down, settings
):
    settings.AGENT_REPLY_FANOUT_MAX = 3
    question = message_post_internal(channel=channel, sender_id="user-1", content="Q4?")
    down, _up = redis_down
    down()

    assert reply_slots_claim(message=question, wanted=2) == 2
    assert reply_slots_claim(message=question, wanted=5) == 3  # never past the cap


def test_agents_answering_agents_wait_for_the_counter_and_the_cap_holds_after_it(
    channel, mimi, redis_down, settings
):
    settings.AGENT_REPLY_FANOUT_MAX = 3
    down, up = redis_down
    down()
    # Posting claims the running member's reply: granted, not counted (Redis is down).
    question = message_post_internal(channel=channel, sender_id="user-1", content="Q4?")
    answer = agent_reply_store(message=question, agent=mimi, content="Focus on margins.")

    assert reply_slots_claim(message=answer, wanted=1) == 0  # down: nothing is counted
    up()
    # Back, but the counter never saw the root's claim: the thread counts as spent.
    assert reply_slots_claim(message=answer, wanted=1) == 0


def test_with_the_counter_up_agent_replies_share_the_threads_cap(channel, mimi, settings):
    settings.AGENT_REPLY_FANOUT_MAX = 3
    question = message_post_internal(channel=channel, sender_id="user-1", content="Q4?")
    answer = agent_reply_store(message=question, agent=mimi, content="Focus on margins.")

    # Posting claimed mimi's reply: 2 of the 3 are left for the rest of the thread.
    assert reply_slots_claim(message=answer, wanted=5) == 2
    assert reply_slots_claim(message=answer, wanted=1) == 0

"""A synchronous session message does not hold the event log's lock while its agent answers.

Every event_emit takes that lock (a PostgreSQL advisory lock, held until commit, so that ids
commit in order): a provider call made under it would stall every writer of events on the
platform for as long as the provider takes.
"""

import threading
import time

import pytest
from django.db import connection, transaction

from sessions_app.exchange import session_message
from sessions_app.models import Session
from system.eventlog.services import event_emit
from tests.agents.conftest import (  # noqa: F401 - fixtures
    fake_anthropic,
    fake_openai,
    routing_config,
)

pytestmark = [pytest.mark.django_db(transaction=True)]

PROVIDER_SECONDS = 1.5


def test_events_elsewhere_do_not_wait_for_a_session_agent(
    v1_session,
    routing_config,  # noqa: F811
    fake_openai,  # noqa: F811
):
    if connection.vendor != "postgresql":
        pytest.skip("the event log's lock is a PostgreSQL advisory lock")
    routing_config()  # gpt-4 (the agent's model) → the fake OpenAI server
    fake_openai.enqueue_delay(PROVIDER_SECONDS, text="a considered answer")
    session = Session.objects.get(pk=v1_session()["session_id"])
    outcome = {}

    def exchange() -> None:
        try:
            outcome["reply"] = session_message(session=session, content="Thoughts?").reply
        finally:
            connection.close()

    asking = threading.Thread(target=exchange)
    asking.start()
    deadline = time.monotonic() + 5
    while not fake_openai.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    assert fake_openai.requests, "the agent was never asked"
    started = time.monotonic()
    with transaction.atomic():
        event_emit(event_type="unrelated_change", data={})
    waited = time.monotonic() - started
    asking.join(10)

    assert waited < PROVIDER_SECONDS / 3
    assert outcome["reply"].content == "a considered answer"

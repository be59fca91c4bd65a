"""No transaction is open while a session's agent answers: other writers go on (SQLite's
write lock is database-wide), and a per-session lease, not a row lock, keeps one answer at a
time per session (a second message waits for it, or is refused with 409 session_busy).

The provider is a real local OpenAI-compatible server that holds every answer until the test
opens its gate. Timeouts here only guard against deadlocks; nothing asserts on durations.
"""

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection

from messaging.models import Message
from sessions_app.models import Session
from tests.agents.conftest import fake_anthropic, routing_config  # noqa: F401 - fixtures
from tests.agents.llm_servers import FakeOpenAIServer, Reply

pytestmark = [pytest.mark.embedded, pytest.mark.django_db(transaction=True)]

V1 = "/api/v1/sessions"
ELIZA = "/api/messaging/sessions"
GUARD = 10  # seconds: far beyond any wait the code intends, well under SQLite's 20 s timeout


class GatedOpenAIServer(FakeOpenAIServer):
    """Answers only once `gate` is set; `asked` is set at the first request."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.asked = threading.Event()

    def _next_reply(self, body: dict[str, Any], headers: dict[str, str]) -> Reply:
        reply = super()._next_reply(body, headers)
        self.asked.set()
        self.gate.wait(60)
        return reply


@pytest.fixture
def fake_openai() -> Iterator[GatedOpenAIServer]:
    with GatedOpenAIServer() as server:
        yield server
        server.gate.set()


@pytest.fixture
def gated(routing_config, fake_openai) -> GatedOpenAIServer:  # noqa: F811
    routing_config(timeout=60)  # gpt-4 (the agent's model) → the gated server
    return fake_openai


def in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["response"] = call()
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def ask(client, session_id: str, content: str) -> tuple[threading.Thread, dict[str, Any]]:
    return in_thread(
        lambda: client.post(f"{V1}/{session_id}/message", {"content": content}, format="json")
    )


def conversation(session_id: str) -> list[tuple[str, str]]:
    messages = Message.objects.filter(channel__session__pk=session_id)
    return [(m.sender_type, m.content) for m in messages.order_by("sent_at", "message_id")]


def idle_in_transaction() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND state LIKE 'idle in transaction%%'"
        )
        return cursor.fetchone()[0]


def test_writes_in_another_session_go_on_while_an_agent_answers(owner, v1_session, gated):
    asking_id, other_id = v1_session()["session_id"], v1_session()["session_id"]
    gated.enqueue_text("a considered answer")
    asking, asked = ask(owner, asking_id, "Thoughts?")
    assert gated.asked.wait(GUARD), "the agent was never asked"

    other, wrote = in_thread(
        lambda: (
            owner.post(f"{V1}/{other_id}/heartbeat"),
            owner.post(f"{ELIZA}/{other_id}/messages", {"content": "Meanwhile"}, format="json"),
        )
    )
    other.join(GUARD)
    finished_while_answering = not other.is_alive() and asking.is_alive()
    idle = idle_in_transaction() if connection.vendor == "postgresql" else 0
    gated.gate.set()
    asking.join(GUARD)

    assert finished_while_answering
    assert [r.status_code for r in wrote["response"]] == [200, 201]
    assert idle == 0  # no connection holds a transaction open while the provider answers
    assert asked["response"].status_code == 200
    assert asked["response"].json()["response"] == "a considered answer"
    assert conversation(asking_id) == [("user", "Thoughts?"), ("agent", "a considered answer")]


def test_a_second_message_while_the_agent_answers_is_409_session_busy(
    owner, v1_session, gated, settings
):
    settings.SESSION_REPLY_WAIT_SECONDS = 0
    session_id = v1_session()["session_id"]
    gated.enqueue_text("first answer")
    first, answered = ask(owner, session_id, "First?")
    assert gated.asked.wait(GUARD), "the agent was never asked"

    second, refused = ask(owner, session_id, "Second?")
    second.join(GUARD)
    eliza, refused_eliza = in_thread(
        lambda: owner.post(
            f"{ELIZA}/{session_id}/messages",
            {"content": "Third?", "transport": "websocket"},
            format="json",
        )
    )
    eliza.join(GUARD)
    refused_while_answering = not second.is_alive() and not eliza.is_alive() and first.is_alive()
    gated.gate.set()
    first.join(GUARD)

    assert refused_while_answering
    v1, compat = refused["response"], refused_eliza["response"]
    assert (v1.status_code, v1.json()["error"]["code"]) == (409, "session_busy")
    assert 1 <= int(v1["Retry-After"]) <= 5
    assert (compat.status_code, compat.json()["error"]["code"]) == (409, "SESSION_BUSY")
    assert compat.json()["success"] is False
    assert 1 <= int(compat["Retry-After"]) <= 5
    assert answered["response"].status_code == 200
    assert conversation(session_id) == [("user", "First?"), ("agent", "first answer")]


def test_a_second_message_waits_for_the_answer_before_it(owner, v1_session, gated, settings):
    settings.SESSION_REPLY_WAIT_SECONDS = GUARD
    session_id = v1_session()["session_id"]
    gated.enqueue_text("first answer")
    gated.enqueue_text("second answer")
    first, answered_first = ask(owner, session_id, "First?")
    assert gated.asked.wait(GUARD), "the agent was never asked"

    second, answered_second = ask(owner, session_id, "Second?")
    second.join(0.5)
    waiting = second.is_alive()
    stored_while_waiting = conversation(session_id)
    gated.gate.set()
    first.join(GUARD)
    second.join(GUARD)

    assert waiting
    assert stored_while_waiting == [("user", "First?")]
    assert answered_first["response"].json()["response"] == "first answer"
    assert answered_second["response"].json()["response"] == "second answer"
    assert conversation(session_id) == [
        ("user", "First?"),
        ("agent", "first answer"),
        ("user", "Second?"),
        ("agent", "second answer"),
    ]
    assert [m["content"] for m in gated.requests[1]["messages"][-3:]] == [
        "First?",
        "first answer",
        "Second?",
    ]
    assert Session.objects.get(pk=session_id).reply_lease_until is None


def test_a_failed_answer_gives_the_lease_back(owner, v1_session, gated, settings):
    settings.SESSION_REPLY_WAIT_SECONDS = 0
    session_id = v1_session()["session_id"]
    gated.gate.set()
    gated.enqueue_status(400)  # final: no fallback, the agent's call fails
    gated.enqueue_text("second answer")

    failed = owner.post(f"{V1}/{session_id}/message", {"content": "First?"}, format="json")
    second = owner.post(f"{V1}/{session_id}/message", {"content": "Second?"}, format="json")

    assert failed.status_code == 502
    assert second.status_code == 200
    assert conversation(session_id) == [
        ("user", "First?"),
        ("user", "Second?"),
        ("agent", "second answer"),
    ]
    assert Session.objects.get(pk=session_id).reply_lease_until is None


def test_ending_a_session_asks_for_its_summary_outside_any_transaction(owner, v1_session, gated):
    ending_id, other_id = v1_session()["session_id"], v1_session()["session_id"]
    gated.enqueue_text("A short summary.")
    ending, ended = in_thread(lambda: owner.delete(f"{ELIZA}/{ending_id}"))
    assert gated.asked.wait(GUARD), "the agent was never asked for a summary"

    other, beat = in_thread(lambda: owner.post(f"{V1}/{other_id}/heartbeat"))
    other.join(GUARD)
    finished_while_summarising = not other.is_alive() and ending.is_alive()
    gated.gate.set()
    ending.join(GUARD)

    assert finished_while_summarising
    assert beat["response"].status_code == 200
    assert ended["response"].status_code == 200
    assert Session.objects.get(pk=ending_id).summary == "A short summary."

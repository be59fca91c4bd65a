"""POST /api/messaging/sessions/{id}/messages answers in ElizaOS 1.7.2's shapes (the message-bus
record, the agent's Content object, SSE ids that match), and errors on the ElizaOS routes keep
ElizaOS's body with the real status."""

import json
from pathlib import Path

import pytest
from django.conf import settings

from messaging.models import Message

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

URL = "/api/messaging/sessions"
USER = "2f3b1c9e-6a8d-4a4e-9f0e-1d2c3b4a5f60"
RULES = Path(settings.ROUTING_RULES_PATH).read_text()
BUS_KEYS = {
    "id", "channel_id", "message_server_id", "author_id", "content", "created_at",
    "source_type", "raw_message", "metadata", "in_reply_to_message_id",
}  # fmt: skip


@pytest.fixture
def session_id(owner, mimi) -> str:
    body = {"agentId": str(mimi.agent_id), "userId": USER, "metadata": {"plan": "pro"}}
    response = owner.post(URL, body, format="json")
    assert response.status_code == 201, response.content
    return response.json()["sessionId"]


def post(client, session_id: str, **body):
    return client.post(f"{URL}/{session_id}/messages", body, format="json")


def sse_events(response) -> list[tuple[str, dict]]:
    stream = b"".join(response.streaming_content).decode()
    return [
        (block.split("\n")[0].removeprefix("event: "), json.loads(block.split("data: ", 1)[1]))
        for block in stream.strip().split("\n\n")
    ]


def test_user_message_is_the_bus_record_with_elizas_types(owner, session_id):
    response = post(owner, session_id, content="Status?", metadata={"lang": "en"})

    record = response.json()["userMessage"]
    assert response.status_code == 201
    assert set(record) >= BUS_KEYS
    assert record["author_id"] == USER
    assert record["content"] == "Status?"
    assert isinstance(record["created_at"], int)
    assert record["source_type"] == "user"
    assert record["raw_message"] == {"content": "Status?", "attachments": []}
    assert record["metadata"] == {"lang": "en", "sessionId": session_id}
    assert record["in_reply_to_message_id"] is None
    assert record["message_server_id"] == "00000000-0000-0000-0000-000000000000"


def test_http_transport_answers_the_agents_content_object(owner, session_id):
    body = post(owner, session_id, content="Plan Q4", transport="http").json()

    reply = body["agentResponse"]
    assert "Plan Q4" in reply["text"]
    assert reply["text"] == Message.objects.get(pk=reply["id"], sender_type="agent").content
    assert reply["inReplyTo"] == body["userMessage"]["id"]


def test_attachments_are_kept_in_raw_message_and_the_stored_metadata(owner, session_id):
    attachments = [{"url": "https://example.com/q4.pdf", "contentType": "application/pdf"}]

    record = post(owner, session_id, content="See file", attachments=attachments).json()[
        "userMessage"
    ]

    assert record["raw_message"]["attachments"] == attachments
    assert Message.objects.get(pk=record["id"]).metadata["attachments"] == attachments


def test_attachments_share_the_metadata_size_limit(owner, session_id):
    response = post(owner, session_id, content="x", attachments=[{"data": "y" * 10_300}])

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"


def test_sse_sends_the_bus_record_then_chunks_whose_id_is_dones(owner, session_id):
    response = post(owner, session_id, content="Stream it", transport="sse")

    events = sse_events(response)
    kinds = [kind for kind, _ in events]
    done = events[-1][1]
    chunk_ids = {data["messageId"] for kind, data in events if kind == "chunk"}
    assert kinds[0] == "user_message" and kinds[-1] == "done"
    assert set(events[0][1]) >= BUS_KEYS
    assert chunk_ids == {done["id"]} == {done["messageId"]}
    assert done["text"] == Message.objects.get(pk=done["id"], sender_type="agent").content


def test_rate_limit_on_the_eliza_routes_is_429_with_retry_after_and_elizas_body(
    fresh_rate_window, owner, session_id, tmp_path, settings
):  # the window first: the session's creation must count in the same window
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.replace("    messaging: 300", "    messaging: 3"))  # the create was 1
    settings.ROUTING_RULES_PATH = rules

    statuses = [owner.get(f"{URL}/{session_id}").status_code for _ in range(3)]
    response = post(owner, session_id, content="again")

    assert statuses == [200, 200, 429]
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == "RATE_LIMIT_EXCEEDED"
    assert body["error"]["message"]


def test_not_found_keeps_elizas_code_and_status(owner, session_id):
    response = owner.get(f"{URL}/7d1f3c2a-0b4e-4f6a-8c9d-1e2f3a4b5c6d")

    assert response.status_code == 404
    assert response.json()["success"] is False
    assert response.json()["error"]["code"] == "SESSION_NOT_FOUND"


def test_a_budget_failure_keeps_its_402(owner, session_id, mimi):
    mimi.config = {**mimi.config, "daily_budget_usd": 0}
    mimi.save(update_fields=["config"])

    response = post(owner, session_id, content="Spend", transport="http")

    assert response.status_code == 402
    assert response.json()["error"]["code"] == "AGENT_BUDGET_EXCEEDED"

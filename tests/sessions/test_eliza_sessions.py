"""/api/messaging/sessions: ElizaOS 1.7.2's routes, shapes and codes."""

import json
import uuid
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from agents.services import agent_stop
from config.celery import app as celery_app
from messaging.models import Message
from sessions_app.models import Session
from sessions_app.sweep import sessions_sweep
from system.kernel.redis_client import get_redis

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

URL = "/api/messaging/sessions"
USER = "2f3b1c9e-6a8d-4a4e-9f0e-1d2c3b4a5f60"
SESSION_INFO = {
    "sessionId", "channelId", "agentId", "userId", "createdAt", "lastActivity", "metadata",
    "expiresAt", "timeoutConfig", "renewalCount", "timeRemaining", "isNearExpiration",
}  # fmt: skip


@pytest.fixture
def eliza_session(owner, mimi):
    def make(**body):
        response = owner.post(
            URL, {"agentId": str(mimi.agent_id), "userId": USER, **body}, format="json"
        )
        assert response.status_code == 201, response.content
        return response.json()

    return make


def code(response) -> str:
    return response.json()["error"]["code"]


def test_create_answers_elizas_shape(eliza_session):
    body = eliza_session(metadata={"source": "web"})

    assert set(body) == {
        "sessionId", "channelId", "agentId", "userId", "createdAt", "metadata", "expiresAt",
        "timeoutConfig",
    }  # fmt: skip
    assert body["metadata"] == {"source": "web"}
    assert body["timeoutConfig"]["timeoutMinutes"] == 30


def test_create_clamps_the_timeout_config(eliza_session):
    body = eliza_session(timeoutConfig={"timeoutMinutes": 1, "maxDurationMinutes": 1})

    assert body["timeoutConfig"]["timeoutMinutes"] == 5
    assert body["timeoutConfig"]["maxDurationMinutes"] == 5


def test_create_missing_fields_is_validation_error_listing_them(owner, mimi):
    response = owner.post(URL, {"agentId": str(mimi.agent_id)}, format="json")

    assert response.status_code == 400
    assert code(response) == "VALIDATION_ERROR"
    assert response.json()["error"]["details"]["missingFields"] == ["userId"]


@pytest.mark.parametrize("field", ["agentId", "userId"])
def test_create_with_a_non_uuid_id_is_400(owner, mimi, field):
    body = {"agentId": str(mimi.agent_id), "userId": USER, field: "not-a-uuid"}

    assert owner.post(URL, body, format="json").status_code == 400


def test_create_with_oversized_metadata_is_400(owner, mimi):
    body = {"agentId": str(mimi.agent_id), "userId": USER, "metadata": {"x": "y" * 10_300}}

    assert code(owner.post(URL, body, format="json")) == "VALIDATION_ERROR"


def test_create_for_an_unknown_or_stopped_agent_is_404_agent_not_found(owner, mimi):
    unknown = owner.post(URL, {"agentId": str(uuid.uuid4()), "userId": USER}, format="json")
    agent_stop(agent=mimi)
    stopped = owner.post(URL, {"agentId": str(mimi.agent_id), "userId": USER}, format="json")

    assert unknown.status_code == stopped.status_code == 404
    assert code(unknown) == code(stopped) == "AGENT_NOT_FOUND"


def test_get_returns_session_info_and_does_not_renew(owner, eliza_session):
    session_id = eliza_session()["sessionId"]

    first = owner.get(f"{URL}/{session_id}").json()
    second = owner.get(f"{URL}/{session_id}").json()

    assert set(first) == SESSION_INFO
    assert first["renewalCount"] == second["renewalCount"] == 0
    assert first["expiresAt"] == second["expiresAt"]
    assert 0 < first["timeRemaining"] <= 30 * 60_000


def test_expired_session_is_410_and_stays_stored(owner, eliza_session):
    session_id = eliza_session()["sessionId"]

    with time_machine.travel(timezone.now() + timedelta(minutes=31)):
        response = owner.get(f"{URL}/{session_id}")
        again = owner.get(f"{URL}/{session_id}")

    assert response.status_code == again.status_code == 410
    assert code(response) == "SESSION_EXPIRED"
    assert Session.objects.get(pk=session_id).status == "expired"


def test_unknown_session_is_404_session_not_found(owner, mimi):
    response = owner.get(f"{URL}/{uuid.uuid4()}")

    assert response.status_code == 404
    assert code(response) == "SESSION_NOT_FOUND"


def test_error_bodies_have_no_stack_trace(owner, mimi):
    error = owner.get(f"{URL}/{uuid.uuid4()}").json()["error"]

    assert {"code", "message", "timestamp"} <= set(error)
    assert "Traceback" not in json.dumps(error)


def test_message_over_websocket_transport_stores_and_the_worker_answers(owner, eliza_session):
    session_id = eliza_session()["sessionId"]
    celery_app.conf.task_always_eager = True
    try:
        response = owner.post(f"{URL}/{session_id}/messages", {"content": "Status?"}, format="json")
    finally:
        celery_app.conf.task_always_eager = False

    assert response.status_code == 201
    body = response.json()
    assert body["success"] is True
    assert body["userMessage"]["content"] == "Status?"
    assert body["userMessage"]["isAgent"] is False
    assert set(body["sessionStatus"]) == {
        "expiresAt",
        "renewalCount",
        "wasRenewed",
        "isNearExpiration",
    }
    assert body["sessionStatus"]["wasRenewed"] is True
    assert "agentResponse" not in body


def test_message_over_http_transport_waits_for_the_agent(owner, eliza_session):
    session_id = eliza_session()["sessionId"]

    body = owner.post(
        f"{URL}/{session_id}/messages", {"content": "Plan Q4", "transport": "http"}, format="json"
    ).json()

    assert body["agentResponse"]["isAgent"] is True
    assert "Plan Q4" in body["agentResponse"]["content"]


def test_message_over_sse_streams_chunks_then_done(owner, eliza_session):
    session_id = eliza_session()["sessionId"]

    response = owner.post(
        f"{URL}/{session_id}/messages", {"content": "Stream it", "transport": "sse"}, format="json"
    )
    stream = b"".join(response.streaming_content).decode()

    assert response["Content-Type"] == "text/event-stream"
    events = [
        block.split("\n")[0].removeprefix("event: ") for block in stream.strip().split("\n\n")
    ]
    assert events[0] == "user_message"
    assert events[-1] == "done"
    assert events.count("chunk") >= 2
    chunks = [
        json.loads(block.split("data: ", 1)[1])
        for block in stream.strip().split("\n\n")
        if block.startswith("event: chunk")
    ]
    assert [c["index"] for c in chunks] == list(range(len(chunks)))
    reply = Message.objects.get(channel__session__pk=session_id, sender_type="agent")
    assert "".join(c["chunk"] for c in chunks) == reply.content


@pytest.mark.parametrize(
    "body",
    [
        {"content": "x", "transport": "pigeon"},
        {"content": 42},
        {"content": ""},
        {"content": "x" * 4001},
        {"content": "x", "metadata": {"b": "x" * 10_300}},
    ],
)
def test_bad_messages_are_400(owner, eliza_session, body):
    session_id = eliza_session()["sessionId"]

    assert owner.post(f"{URL}/{session_id}/messages", body, format="json").status_code == 400


def test_history_is_newest_first_with_cursors_in_epoch_ms(owner, eliza_session):
    session_id = eliza_session()["sessionId"]
    for text in ("one", "two", "three"):
        owner.post(f"{URL}/{session_id}/messages", {"content": text}, format="json")

    page = owner.get(f"{URL}/{session_id}/messages?limit=2").json()
    rest = owner.get(
        f"{URL}/{session_id}/messages?limit=2&before={page['cursors']['before']}"
    ).json()

    assert [m["content"] for m in page["messages"]] == ["three", "two"]
    assert page["hasMore"] is True
    assert set(page["messages"][0]) == {
        "id",
        "content",
        "authorId",
        "isAgent",
        "createdAt",
        "metadata",
    }
    assert isinstance(page["cursors"]["before"], int)
    assert [m["content"] for m in rest["messages"]] == ["one"]
    assert rest["hasMore"] is False


def test_history_limit_is_clamped_and_a_bad_cursor_is_400(owner, eliza_session):
    session_id = eliza_session()["sessionId"]

    bad = owner.get(f"{URL}/{session_id}/messages?before=yesterday")

    assert bad.status_code == 400
    assert bad.json()["error"]["details"] == {
        "parameter": "before", "value": "yesterday", "reason": "Not epoch milliseconds",
    }  # fmt: skip
    assert owner.get(f"{URL}/{session_id}/messages?limit=0").status_code == 200


def test_renew_heartbeat_and_timeout_return_session_info(owner, eliza_session):
    session_id = eliza_session(timeoutConfig={"autoRenew": False})["sessionId"]

    renewed = owner.post(f"{URL}/{session_id}/renew").json()
    beat = owner.post(f"{URL}/{session_id}/heartbeat").json()
    patched = owner.patch(
        f"{URL}/{session_id}/timeout", {"timeoutMinutes": 90}, format="json"
    ).json()

    assert renewed["renewalCount"] == 1  # renews even with autoRenew off
    assert beat["renewalCount"] == 1  # heartbeat renews only with autoRenew
    assert patched["timeoutConfig"]["timeoutMinutes"] == 90
    assert patched["timeoutConfig"]["autoRenew"] is False  # merged, not reset


def test_patch_timeout_rejects_strings_and_out_of_range(owner, eliza_session):
    session_id = eliza_session()["sessionId"]

    for body in ({"timeoutMinutes": "45"}, {"timeoutMinutes": 3}):
        response = owner.patch(f"{URL}/{session_id}/timeout", body, format="json")
        assert response.status_code == 400
        assert code(response) == "VALIDATION_ERROR"


def test_renewal_without_room_is_session_renewal_failed(owner, eliza_session):
    session_id = eliza_session(timeoutConfig={"timeoutMinutes": 30, "maxDurationMinutes": 40})[
        "sessionId"
    ]

    with time_machine.travel(timezone.now() + timedelta(minutes=20)):
        response = owner.post(f"{URL}/{session_id}/renew")

    assert response.status_code == 400
    assert code(response) == "SESSION_RENEWAL_FAILED"


def test_delete_ends_the_session_and_keeps_the_row(owner, eliza_session):
    session_id = eliza_session()["sessionId"]

    deleted = owner.delete(f"{URL}/{session_id}")
    again = owner.delete(f"{URL}/{session_id}")
    read = owner.get(f"{URL}/{session_id}")

    assert deleted.json() == {
        "success": True,
        "message": f"Session {session_id} deleted successfully",
    }
    assert again.status_code == read.status_code == 404
    assert Session.objects.get(pk=session_id).status == "ended"


def test_list_has_sessions_total_and_stats(owner, eliza_session):
    eliza_session()
    expired = eliza_session(timeoutConfig={"timeoutMinutes": 5})["sessionId"]
    Session.objects.filter(pk=expired).update(expires_at=timezone.now() - timedelta(seconds=1))

    body = owner.get(URL).json()

    assert body["total"] == 1
    assert set(body["sessions"][0]) == SESSION_INFO
    assert body["stats"] == {"totalSessions": 2, "activeSessions": 1, "expiredSessions": 1}


def test_health_counts_and_reports_the_sweep(owner, eliza_session):
    eliza_session()
    near = eliza_session()["sessionId"]
    Session.objects.filter(pk=near).update(warn_at=timezone.now() - timedelta(seconds=1))
    sessions_sweep()

    body = owner.get(f"{URL}/health").json()

    assert body["status"] == "healthy"
    assert body["activeSessions"] == 2
    assert body["expiringSoon"] == 1
    assert isinstance(body["uptime"], int)


def test_health_is_degraded_when_the_sweep_is_stale(owner, mimi):
    get_redis().set("371os:sessions:last_sweep", 0)

    assert owner.get(f"{URL}/health").json()["status"] == "degraded"


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("get", ""), ("delete", ""), ("get", "/messages"), ("post", "/messages"),
        ("post", "/renew"), ("post", "/heartbeat"), ("patch", "/timeout"),
    ],
)  # fmt: skip
def test_another_principals_session_is_404_on_every_route(principal, eliza_session, method, suffix):
    session_id = eliza_session()["sessionId"]

    response = getattr(principal("intruder"), method)(
        f"{URL}/{session_id}{suffix}", {"content": "x", "timeoutMinutes": 60}, format="json"
    )

    assert response.status_code == 404
    assert code(response) == "SESSION_NOT_FOUND"


def test_a_session_made_through_one_api_is_usable_through_the_other(
    owner, v1_session, eliza_session
):
    from_v1 = v1_session(user_id=USER)["session_id"]
    from_eliza = eliza_session()["sessionId"]

    eliza_view = owner.post(f"{URL}/{from_v1}/heartbeat")
    v1_view = owner.post(
        f"/api/v1/sessions/{from_eliza}/message", {"content": "hello"}, format="json"
    )

    assert eliza_view.status_code == 200
    assert eliza_view.json()["sessionId"] == from_v1
    assert v1_view.status_code == 200
    assert owner.get(f"{URL}/{from_eliza}/messages").json()["messages"][0]["isAgent"] is True

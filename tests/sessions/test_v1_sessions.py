"""/api/v1/sessions route by route."""

import uuid
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from agents.services import agent_create, agent_delete, agent_stop, agent_update
from messaging.models import Message
from sessions_app.models import Session
from system.models import EventLogEntry

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

URL = "/api/v1/sessions"


def error(response) -> dict:
    return response.json()["error"]


def test_create_returns_the_spec_shape_with_timeout_config(v1_session, mimi):
    body = v1_session(context={"conversation_topic": "Q4 strategy planning"})

    assert body["agent_id"] == "ceo_mimi"
    assert body["agent_uuid"] == str(mimi.agent_id)
    assert body["user_id"] == "user-123"
    assert body["status"] == "active"
    assert body["timeoutConfig"] == {
        "timeoutMinutes": 30,
        "autoRenew": True,
        "maxDurationMinutes": 720,
        "warningThresholdMinutes": 5,
    }
    session = Session.objects.get(pk=body["session_id"])
    assert session.context == {"conversation_topic": "Q4 strategy planning"}
    assert session.channel.type == "direct"
    assert (
        EventLogEntry.objects.filter(event_type="session_update", session_id=session.pk).count()
        == 1
    )


def test_create_with_an_unknown_agent_is_404(owner, mimi):
    response = owner.post(URL, {"agent_id": "ghost", "user_id": "u"}, format="json")

    assert response.status_code == 404
    assert error(response)["code"] == "agent_not_found"


def test_create_with_a_stopped_agent_is_409(owner, mimi):
    agent_stop(agent=mimi)

    response = owner.post(URL, {"agent_id": "ceo_mimi", "user_id": "u"}, format="json")

    assert response.status_code == 409
    assert error(response)["code"] == "agent_not_running"


@pytest.mark.parametrize("user_id", ["", "x" * 256])
def test_create_with_a_bad_user_id_is_400(owner, mimi, user_id):
    assert (
        owner.post(URL, {"agent_id": "ceo_mimi", "user_id": user_id}, format="json").status_code
        == 400
    )


def test_create_with_an_out_of_range_timeout_is_400_invalid_timeout_config(owner, mimi):
    response = owner.post(
        URL,
        {"agent_id": "ceo_mimi", "user_id": "u", "timeoutConfig": {"timeoutMinutes": 2}},
        format="json",
    )

    assert response.status_code == 400
    assert error(response)["code"] == "invalid_timeout_config"
    assert error(response)["details"]["allowed"]["timeoutMinutes"] == [5, 1440]
    assert not Session.objects.exists()


def test_get_returns_the_session_object(owner, v1_session):
    session_id = v1_session()["session_id"]

    body = owner.get(f"{URL}/{session_id}").json()

    spec_fields = {
        "session_id", "agent_id", "user_id", "created_at", "expires_at", "status", "context",
        "message_count", "last_activity",
    }  # fmt: skip
    assert spec_fields | {"timeoutConfig", "renewal_count"} <= set(body)
    assert body["message_count"] == 0


def test_list_filters_and_paginates_own_sessions(owner, principal, v1_session, mimi):
    first = v1_session(user_id="a")["session_id"]
    v1_session(user_id="b")
    principal("other").post(URL, {"agent_id": "ceo_mimi", "user_id": "a"}, format="json")

    by_user = owner.get(f"{URL}?user_id=a").json()
    by_agent = owner.get(f"{URL}?agent_id=ceo_mimi&limit=1").json()

    assert [s["session_id"] for s in by_user["sessions"]] == [first]
    assert by_agent["pagination"] == {"page": 1, "limit": 1, "total": 2}
    assert owner.get(f"{URL}?status=ended").json()["sessions"] == []


def test_message_answers_through_the_runtime_and_updates_context(owner, v1_session, mimi):
    session_id = v1_session()["session_id"]

    response = owner.post(
        f"{URL}/{session_id}/message", {"content": "How is the Q4 pipeline?"}, format="json"
    )

    assert response.status_code == 200
    body = response.json()
    assert "Q4 pipeline" in body["response"]
    assert body["context_update"]["turn_count"] == 1
    assert body["context_update"]["last_topic"] == "How is the Q4 pipeline"
    session = owner.get(f"{URL}/{session_id}").json()
    assert session["message_count"] == 2
    assert session["context"]["turn_count"] == 1
    assert session["renewal_count"] == 1


def test_message_events_follow_the_answer_in_order(owner, v1_session):
    """The exchange's events come in order: the user's message (committed before the agent is
    asked), then the reply and the session update (committed with the answer)."""
    session_id = v1_session()["session_id"]
    created = EventLogEntry.objects.order_by("-event_id").first().event_id

    owner.post(f"{URL}/{session_id}/message", {"content": "How is the Q4 pipeline?"}, format="json")

    events = list(EventLogEntry.objects.filter(event_id__gt=created).order_by("event_id"))
    assert [e.event_type for e in events] == ["new_message", "new_message", "session_update"]
    user, reply = (e.payload["message"] for e in events[:2])
    assert user["sender_type"] == "user" and user["content"] == "How is the Q4 pipeline?"
    assert reply["sender_type"] == "agent" and reply["in_reply_to"] == user["message_id"]
    assert events[2].payload["event"] == "message"


def test_message_over_budget_keeps_the_user_message_and_its_event(owner, v1_session, mimi):
    session_id = v1_session()["session_id"]
    agent_update(agent=mimi, data={"config": {"daily_budget_usd": 0}})

    response = owner.post(f"{URL}/{session_id}/message", {"content": "hi"}, format="json")

    assert response.status_code == 402
    assert error(response)["code"] == "agent_budget_exceeded"
    stored = Message.objects.get(channel__session__pk=session_id)
    assert stored.sender_type == "user"
    assert EventLogEntry.objects.filter(
        event_type="new_message", payload__message__message_id=str(stored.message_id)
    ).exists()


def test_message_with_bad_content_is_400(owner, v1_session):
    session_id = v1_session()["session_id"]

    response = owner.post(f"{URL}/{session_id}/message", {"content": "  "}, format="json")

    assert response.status_code == 400
    assert error(response)["code"] == "invalid_message_content"


def test_message_to_a_stopped_agent_is_409(owner, v1_session, mimi):
    session_id = v1_session()["session_id"]
    agent_stop(agent=mimi)

    response = owner.post(f"{URL}/{session_id}/message", {"content": "hi"}, format="json")

    assert response.status_code == 409
    assert error(response)["code"] == "agent_not_running"


def test_an_expired_session_answers_410_and_is_marked_expired_once(owner, v1_session):
    session_id = v1_session()["session_id"]

    with time_machine.travel(timezone.now() + timedelta(minutes=31)):
        first = owner.post(f"{URL}/{session_id}/message", {"content": "hi"}, format="json")
        second = owner.post(f"{URL}/{session_id}/heartbeat")
        third = owner.post(f"{URL}/{session_id}/renew")

    assert first.status_code == second.status_code == third.status_code == 410
    assert error(first)["code"] == error(second)["code"] == error(third)["code"]
    assert error(first)["code"] == "session_expired"
    assert Session.objects.get(pk=session_id).status == "expired"
    expired = EventLogEntry.objects.filter(event_type="session_update", payload__status="expired")
    assert expired.count() == 1
    assert not Message.objects.filter(channel__session__pk=session_id).exists()


def test_create_with_the_agents_uuid_answers_that_uuid(owner, mimi):
    body = owner.post(
        URL, {"agent_id": str(mimi.agent_id), "user_id": "user-123"}, format="json"
    ).json()

    assert body["agent_id"] == body["agent_uuid"] == str(mimi.agent_id)


def test_get_of_a_due_session_answers_200_expired_and_expires_it_once(owner, v1_session):
    session_id = v1_session()["session_id"]

    with time_machine.travel(timezone.now() + timedelta(minutes=31)):
        first = owner.get(f"{URL}/{session_id}")
        second = owner.get(f"{URL}/{session_id}")

    assert first.status_code == second.status_code == 200
    assert first.json()["status"] == second.json()["status"] == "expired"
    assert first.json()["session_id"] == session_id
    assert Session.objects.get(pk=session_id).status == "expired"
    expired = EventLogEntry.objects.filter(event_type="session_update", payload__status="expired")
    assert [e.payload["event"] for e in expired] == ["expired"]


def test_end_writes_a_summary_and_ending_twice_is_409(owner, v1_session):
    session_id = v1_session()["session_id"]
    owner.post(f"{URL}/{session_id}/message", {"content": "Budget for hiring"}, format="json")

    ended = owner.post(f"{URL}/{session_id}/end")
    again = owner.post(f"{URL}/{session_id}/end")
    message = owner.post(f"{URL}/{session_id}/message", {"content": "hi"}, format="json")

    assert ended.status_code == 200
    body = ended.json()
    assert body["status"] == "ended"
    assert "1 user message" in body["summary"]
    assert "Budget for hiring" in body["summary"]
    assert again.status_code == message.status_code == 409
    assert error(again)["code"] == "session_ended"
    assert owner.get(f"{URL}/{session_id}").json()["status"] == "ended"


def test_heartbeat_renews_with_auto_renew(owner, v1_session):
    session_id = v1_session()["session_id"]

    with time_machine.travel(timezone.now() + timedelta(minutes=20)):
        body = owner.post(f"{URL}/{session_id}/heartbeat").json()
        now = timezone.now()

    assert body["renewal_count"] == 1
    expires = timezone.datetime.fromisoformat(body["expires_at"])
    assert abs((expires - (now + timedelta(minutes=30))).total_seconds()) < 2


def test_heartbeat_writes_no_event(owner, v1_session):
    session_id = v1_session()["session_id"]
    before = EventLogEntry.objects.count()

    owner.post(f"{URL}/{session_id}/heartbeat")

    assert EventLogEntry.objects.count() == before


def test_heartbeat_runs_a_fixed_small_number_of_queries(
    owner, v1_session, django_assert_max_num_queries
):
    session_id = v1_session()["session_id"]

    # The key, its last_used_at (once a minute), the session, its update, its message count.
    with django_assert_max_num_queries(5):
        assert owner.post(f"{URL}/{session_id}/heartbeat").status_code == 200


def test_renew_without_room_before_the_max_duration_is_422(owner, v1_session):
    session_id = v1_session(timeoutConfig={"timeoutMinutes": 30, "maxDurationMinutes": 60})[
        "session_id"
    ]
    start = Session.objects.get(pk=session_id).created_at

    with time_machine.travel(start + timedelta(minutes=25), tick=False):
        renewed = owner.post(f"{URL}/{session_id}/renew")
    with time_machine.travel(start + timedelta(minutes=31), tick=False):
        refused = owner.post(f"{URL}/{session_id}/renew")

    assert renewed.status_code == 200
    assert renewed.json()["renewal_count"] == 1
    assert refused.status_code == 422
    assert error(refused)["code"] == "session_renewal_limit"
    assert Session.objects.get(pk=session_id).expires_at == start + timedelta(minutes=55)


def test_patch_timeout_merges_and_recomputes_expiry(owner, v1_session):
    session_id = v1_session()["session_id"]

    response = owner.patch(f"{URL}/{session_id}/timeout", {"timeoutMinutes": 60}, format="json")

    body = response.json()
    assert body["timeoutConfig"]["timeoutMinutes"] == 60
    assert body["timeoutConfig"]["maxDurationMinutes"] == 720
    created = timezone.datetime.fromisoformat(body["created_at"])
    expires = timezone.datetime.fromisoformat(body["expires_at"])
    assert timedelta(minutes=59) < expires - created <= timedelta(minutes=61)


def test_patch_timeout_out_of_range_is_400(owner, v1_session):
    session_id = v1_session()["session_id"]

    response = owner.patch(f"{URL}/{session_id}/timeout", {"timeoutMinutes": 5000}, format="json")

    assert response.status_code == 400
    assert error(response)["code"] == "invalid_timeout_config"


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("get", "", None),
        ("post", "/message", {"content": "hi"}),
        ("post", "/end", None),
        ("post", "/heartbeat", None),
        ("post", "/renew", None),
        ("patch", "/timeout", {"timeoutMinutes": 60}),
    ],
)
def test_another_principals_session_is_404_on_every_route(
    principal, v1_session, method, suffix, body
):
    session_id = v1_session()["session_id"]
    intruder = principal("intruder")

    response = getattr(intruder, method)(f"{URL}/{session_id}{suffix}", body, format="json")

    assert response.status_code == 404
    assert error(response)["code"] == "session_not_found"


def test_admin_sees_every_session(principal, v1_session):
    session_id = v1_session()["session_id"]

    assert principal("boss", ("admin",)).get(f"{URL}/{session_id}").status_code == 200


def test_unknown_session_is_404(owner, mimi):
    assert owner.get(f"{URL}/{uuid.uuid4()}").status_code == 404


def test_deleting_the_agent_keeps_the_session(owner, v1_session, mimi):
    session_id = v1_session()["session_id"]

    agent_delete(agent=mimi)

    assert owner.get(f"{URL}/{session_id}").json()["agent_id"] == str(mimi.agent_id)
    assert agent_create(name="ceo_mimi", type="ceo_mimi")

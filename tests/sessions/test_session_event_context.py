"""`session_update` events carry what changed in the context and a digest of the whole, not
the whole context (up to 1 MiB) in every event (issue 17 item 5)."""

import hashlib
import json

import pytest

from sessions_app.models import Session
from system.models import EventLogEntry

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

URL = "/api/v1/sessions"
BIG = {"notes": "n" * 200_000, "customer": "ACME"}


def digest(context: dict) -> str:
    canonical = json.dumps(context, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def session_events(session_id: str) -> list[dict]:
    entries = EventLogEntry.objects.filter(event_type="session_update", session_id=session_id)
    return [entry.payload for entry in entries.order_by("event_id")]


def test_a_message_event_carries_the_changed_keys_and_a_digest_not_the_whole_context(
    owner, v1_session
):
    session_id = v1_session(context=BIG)["session_id"]

    response = owner.post(f"{URL}/{session_id}/message", {"content": "Q4?"}, format="json")

    assert response.status_code == 200
    message_event = session_events(session_id)[-1]
    assert message_event["event"] == "message"
    assert message_event["context"] == response.json()["context_update"]
    assert message_event["context_keys"] == ["last_message_at", "last_topic", "turn_count"]
    assert message_event["context_digest"] == digest(Session.objects.get(pk=session_id).context)
    assert len(json.dumps(message_event)) < 2_000


def test_a_large_initial_context_is_named_not_copied_into_the_created_event(v1_session):
    session_id = v1_session(context=BIG)["session_id"]

    (created,) = session_events(session_id)

    assert created["event"] == "created"
    assert created["context"] == {}
    assert created["context_truncated"] is True
    assert created["context_keys"] == ["customer", "notes"]
    assert created["context_digest"] == digest(BIG)


def test_a_small_initial_context_travels_with_the_created_event(v1_session):
    session_id = v1_session(context={"customer": "ACME"})["session_id"]

    (created,) = session_events(session_id)

    assert created["context"] == {"customer": "ACME"}
    assert created["context_truncated"] is False
    assert created["context_digest"] == digest({"customer": "ACME"})

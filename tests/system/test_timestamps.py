"""One timestamp format on our own API: ISO 8601, UTC, milliseconds, "Z" (the spec's
`2025-09-13T17:28:17.400Z`), in REST bodies, error envelopes and idempotent replays. The
ElizaOS-compatible routes keep ElizaOS's formats (tests/sessions pins those); event frames are
pinned in tests/realtime/test_timestamps.py."""

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from agents.services import agent_create, agent_start
from system.kernel.timefmt import ISO_Z_PATTERN, iso_z

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

ISO_Z = re.compile(ISO_Z_PATTERN)
# Anything that starts like a date is a timestamp a client reads.
LOOKS_LIKE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}")


def timestamps(body: Any, path: str = "") -> dict[str, str]:
    """Every string in `body` that looks like a date, by its path."""
    if isinstance(body, dict):
        return {
            k: v
            for key, value in body.items()
            for k, v in timestamps(value, f"{path}.{key}").items()
        }
    if isinstance(body, list):
        return {
            k: v for i, item in enumerate(body) for k, v in timestamps(item, f"{path}[{i}]").items()
        }
    return {path: body} if isinstance(body, str) and LOOKS_LIKE_TIME.match(body) else {}


def assert_iso_z(body: Any, *required: str) -> None:
    found = timestamps(body)
    assert set(required) <= set(found), (required, found)
    assert {path: value for path, value in found.items() if not ISO_Z.match(value)} == {}


def test_iso_z_writes_utc_milliseconds_and_z_even_without_a_fraction():
    plus_two = timezone(timedelta(hours=2))

    assert iso_z(datetime(2025, 9, 13, 17, 28, 17, 400_999, tzinfo=UTC)) == (
        "2025-09-13T17:28:17.400Z"
    )
    assert iso_z(datetime(2025, 9, 13, 19, 28, 17, tzinfo=plus_two)) == "2025-09-13T17:28:17.000Z"


def test_agent_channel_message_and_session_bodies_use_one_timestamp_format(client_as):
    admin = client_as("admin")
    agent_start(agent=agent_create(name="ceo_mimi", type="ceo_mimi"))

    agent = admin.post(
        "/api/v1/agents", {"name": "marketing", "type": "cmo_anova"}, format="json"
    ).json()
    agent_detail = admin.get(f"/api/v1/agents/{agent['agent_id']}").json()
    channel = admin.post("/api/v1/channels", {"name": "ops", "type": "public"}, format="json")
    channel = channel.json()
    message = admin.post(
        f"/api/v1/channels/{channel['channel_id']}/messages",
        {"sender_id": "user-1", "content": "hello"},
        format="json",
    ).json()
    history = admin.get(f"/api/v1/channels/{channel['channel_id']}/messages").json()
    session = admin.post(
        "/api/v1/sessions", {"agent_id": "ceo_mimi", "user_id": "u-1"}, format="json"
    ).json()
    session_detail = admin.get(f"/api/v1/sessions/{session['session_id']}").json()

    assert_iso_z(agent, ".created_at")
    assert_iso_z(agent_detail, ".created_at", ".updated_at")
    assert_iso_z(channel, ".created_at")
    assert_iso_z(message, ".sent_at")
    assert_iso_z(history)
    assert_iso_z(session, ".created_at", ".expires_at")
    assert_iso_z(session_detail, ".created_at", ".expires_at", ".last_activity")


def test_system_status_timestamp_uses_the_format(client_as):
    body = client_as("system_monitor").get("/api/v1/system/status").json()

    assert_iso_z(body, ".timestamp")


def test_error_envelope_timestamp_uses_the_format(client_as):
    body = client_as("admin").get("/api/v1/agents/00000000-0000-0000-0000-000000000000").json()

    assert_iso_z(body, ".error.timestamp")


def test_an_idempotent_replay_repeats_the_format(client_as):
    admin = client_as("admin")
    first = admin.post(
        "/api/v1/channels",
        {"name": "ops", "type": "public"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="t",
    )
    replay = admin.post(
        "/api/v1/channels",
        {"name": "ops", "type": "public"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="t",
    )

    assert replay["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    assert_iso_z(replay.json(), ".created_at")

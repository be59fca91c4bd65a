"""Channels and membership through the real URLs, and who may see what."""

import uuid

import pytest

from agents.services import agent_create
from messaging.models import Channel

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

URL = "/api/v1/channels"


@pytest.fixture
def mimi(db):
    return agent_create(name="ceo_mimi", type="ceo_mimi")


def create(client, **body):
    return client.post(URL, {"name": "ops", "type": "public", **body}, format="json")


def details(response) -> dict:
    return response.json()["error"]["details"]


def test_create_public_channel_returns_the_spec_shape(client_as):
    response = create(client_as("messaging"))

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"channel_id", "name", "type", "created_at", "member_count", "members"}
    assert (body["name"], body["type"], body["member_count"]) == ("ops", "public", 0)
    assert body["members"] == []


def test_create_lists_the_members_as_sent_agent_names_included(client_as, mimi):
    body = create(client_as("messaging"), members=["ceo_mimi", "user-123"]).json()

    assert body["members"] == ["ceo_mimi", "user-123"]
    assert body["member_count"] == 2


def test_members_resolve_agent_names_to_uuids_and_keep_user_ids(client_as, mimi):
    client = client_as("messaging")
    channel_id = create(client, members=["ceo_mimi", "user-123"]).json()["channel_id"]

    members = client.get(f"{URL}/{channel_id}").json()["members"]

    assert {(m["member_id"], m["member_type"]) for m in members} == {
        (str(mimi.agent_id), "agent"),
        ("user-123", "user"),
    }


def test_private_channel_adds_its_creator(client_as, mimi):
    client = client_as("messaging")

    body = create(client, type="private", members=["ceo_mimi"]).json()

    assert body["member_count"] == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"type": "secret"}, "type"),
        ({"type": "private"}, "members"),
        ({"type": "direct", "members": ["a", "b", "c"]}, "members"),
        ({"type": "direct", "members": ["a"]}, "members"),
        ({"members": ["x" * 256]}, "members"),
        ({"members": "not-a-list"}, "members"),
        ({"members": ["agent:nobody"]}, "members"),
    ],
)
def test_invalid_channels_are_400_validation_error(client_as, body, field):
    response = create(client_as("messaging"), **body)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert field in details(response)
    assert not Channel.objects.exists()


def test_unknown_agent_is_named(client_as):
    response = create(client_as("messaging"), members=["agent:ghost"])

    assert "ghost" in response.json()["error"]["message"]


@pytest.fixture
def private_channel(make_user, make_api_key, client_as):
    """A private channel made by `owner` (a member); returns (channel_id, clients)."""
    owner = make_user("owner", roles=("messaging",))
    outsider = make_user("outsider", roles=("messaging",))
    from rest_framework.test import APIClient

    def client_for(user, roles):
        client = APIClient()
        client.credentials(HTTP_X_API_KEY=make_api_key(roles, owner=user))
        return client

    clients = {
        "member": client_for(owner, ["messaging"]),
        "outsider": client_for(outsider, ["messaging"]),
        "admin": client_as("admin"),
    }
    channel_id = create(clients["member"], type="private", members=["user-9"]).json()["channel_id"]
    return channel_id, clients


@pytest.mark.parametrize(
    ("who", "visible"), [("member", True), ("outsider", False), ("admin", True)]
)
def test_private_channel_visibility(private_channel, who, visible):
    channel_id, clients = private_channel
    client = clients[who]

    detail = client.get(f"{URL}/{channel_id}")
    history = client.get(f"{URL}/{channel_id}/messages")
    post = client.post(
        f"{URL}/{channel_id}/messages", {"sender_id": "user-9", "content": "hi"}, format="json"
    )
    listed = [c["channel_id"] for c in client.get(URL).json()["channels"]]

    if visible:
        assert (detail.status_code, history.status_code, post.status_code) == (200, 200, 201)
        assert channel_id in listed
    else:
        for response in (detail, history, post):
            assert response.status_code == 404
            assert response.json()["error"]["code"] == "channel_not_found"
        assert channel_id not in listed


def test_unknown_and_malformed_channel_ids_are_404(client_as):
    client = client_as("messaging")

    for ref in (str(uuid.uuid4()), "not-a-uuid"):
        assert client.get(f"{URL}/{ref}").status_code == 404


def test_public_channels_are_visible_to_every_role_that_reads_channels(client_as):
    channel_id = create(client_as("messaging")).json()["channel_id"]

    assert client_as("agent_manager").get(f"{URL}/{channel_id}").status_code == 200


def test_add_and_remove_members(client_as, mimi):
    client = client_as("messaging")
    channel_id = create(client).json()["channel_id"]

    added = client.post(
        f"{URL}/{channel_id}/members", {"members": ["ceo_mimi", "user-1"]}, format="json"
    )
    removed = client.delete(f"{URL}/{channel_id}/members", {"members": ["ceo_mimi"]}, format="json")
    removed_one = client.delete(f"{URL}/{channel_id}/members/user-1")

    assert added.json()["member_count"] == 2
    assert [m["member_id"] for m in removed.json()["members"]] == ["user-1"]
    assert removed_one.json()["member_count"] == 0


def test_direct_channel_members_cannot_change(client_as):
    client = client_as("messaging")
    channel_id = create(client, type="direct", members=["user-1", "user-2"], name="dm").json()[
        "channel_id"
    ]
    admin = client_as("admin")

    response = admin.post(f"{URL}/{channel_id}/members", {"members": ["user-3"]}, format="json")

    assert response.status_code == 400


def test_removed_member_loses_sight_of_a_private_channel(private_channel):
    channel_id, clients = private_channel
    clients["member"].post(f"{URL}/{channel_id}/members", {"members": ["outsider"]}, format="json")
    seen = clients["outsider"].get(f"{URL}/{channel_id}").status_code

    clients["member"].delete(f"{URL}/{channel_id}/members/outsider")

    assert seen == 200
    assert clients["outsider"].get(f"{URL}/{channel_id}").status_code == 404


def test_removing_the_channel_owner_answers_409_owner_not_removable(private_channel):
    channel_id, clients = private_channel

    response = clients["admin"].delete(f"{URL}/{channel_id}/members/owner")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "owner_not_removable"
    assert clients["member"].get(f"{URL}/{channel_id}").status_code == 200


def test_channel_creation_is_idempotent(client_as):
    client = client_as("messaging")

    first = client.post(
        URL, {"name": "ops", "type": "public"}, format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    second = client.post(
        URL, {"name": "ops", "type": "public"}, format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )

    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert Channel.objects.count() == 1


def test_system_monitor_cannot_read_channels(client_as):
    assert client_as("system_monitor").get(URL).status_code == 403

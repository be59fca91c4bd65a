"""Every principal owns its own things (issue 15): a key made over REST without an owner is a
principal of its own; senders cannot be spoofed; channels have an owner; a key's roles follow
its maker's current roles."""

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from rest_framework.test import APIClient

from agents.services import agent_create, agent_start
from system.models import ApiKey

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

KEYS = "/api/v1/auth/api-keys"
CHANNELS = "/api/v1/channels"
V1_SESSIONS = "/api/v1/sessions"
ELIZA_SESSIONS = "/api/messaging/sessions"
USER_UUID = "5f0c2b8e-3a4d-4c1e-9b7a-2d6e8f1a0c3b"


def client_with(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=key)
    return client


@pytest.fixture
def root(make_user):
    return make_user("root", roles=("admin",))


@pytest.fixture
def root_client(root):
    """The admin, logged in with a JWT: the keys it makes over REST are made by `root`."""
    client = APIClient()
    token = client.post(
        "/api/v1/auth/token", {"username": "root", "password": "pw-123456!"}, format="json"
    ).json()["access"]
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def rest_key(client: APIClient, name: str, roles: list[str], **extra) -> dict:
    response = client.post(KEYS, {"name": name, "roles": roles, **extra}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def partners(root_client):
    """Two `messaging` keys the admin made over REST for partners A and B, no owner field."""
    return {
        name: client_with(rest_key(root_client, f"partner-{name}", ["messaging"])["key"])
        for name in ("a", "b")
    }


@pytest.fixture
def mimi(db):
    return agent_start(agent=agent_create(name="ceo_mimi", type="ceo_mimi"))


def test_a_key_made_over_rest_without_an_owner_is_a_service_user_of_its_own(root_client):
    body = rest_key(root_client, "partner", ["messaging"])

    assert body["owner"] == f"key:{body['prefix']}"
    assert body["created_by"] == "root"


def test_a_key_made_for_a_named_user_acts_for_that_user(root_client, make_user):
    make_user("carol", roles=("messaging",))

    body = rest_key(root_client, "for-carol", ["messaging"], owner="carol")

    assert body["owner"] == "carol"


def test_partner_keys_cannot_see_each_others_v1_sessions(partners, mimi):
    a, b = partners["a"], partners["b"]
    session_id = a.post(
        V1_SESSIONS, {"agent_id": "ceo_mimi", "user_id": "user-1"}, format="json"
    ).json()["session_id"]

    assert b.get(f"{V1_SESSIONS}/{session_id}").status_code == 404
    assert b.post(f"{V1_SESSIONS}/{session_id}/heartbeat").status_code == 404
    assert (
        b.post(f"{V1_SESSIONS}/{session_id}/message", {"content": "hi"}, format="json")
    ).status_code == 404
    assert b.post(f"{V1_SESSIONS}/{session_id}/end").status_code == 404
    assert b.get(V1_SESSIONS).json()["pagination"]["total"] == 0
    assert a.get(f"{V1_SESSIONS}/{session_id}").status_code == 200


def test_partner_keys_cannot_see_each_others_elizaos_sessions(partners, mimi):
    a, b = partners["a"], partners["b"]
    created = a.post(
        ELIZA_SESSIONS, {"agentId": str(mimi.agent_id), "userId": USER_UUID}, format="json"
    ).json()
    session_id, channel_id = created["sessionId"], created["channelId"]

    assert b.get(f"{ELIZA_SESSIONS}/{session_id}").status_code == 404
    assert b.get(f"{ELIZA_SESSIONS}/{session_id}/messages").status_code == 404
    assert (
        b.post(
            f"{ELIZA_SESSIONS}/{session_id}/messages", {"content": "hi"}, format="json"
        ).status_code
        == 404
    )
    assert b.delete(f"{ELIZA_SESSIONS}/{session_id}").status_code == 404
    assert b.get(ELIZA_SESSIONS).json()["total"] == 0
    assert b.get(f"{CHANNELS}/{channel_id}").status_code == 404


def test_partner_keys_cannot_see_or_touch_each_others_channels_and_messages(partners):
    a, b = partners["a"], partners["b"]
    channel_id = a.post(
        CHANNELS, {"name": "deal", "type": "private", "members": ["user-1"]}, format="json"
    ).json()["channel_id"]
    message_id = a.post(
        f"{CHANNELS}/{channel_id}/messages", {"sender_id": "user-1", "content": "hi"}, format="json"
    ).json()["message_id"]

    assert b.get(f"{CHANNELS}/{channel_id}").status_code == 404
    assert b.get(f"{CHANNELS}/{channel_id}/messages").status_code == 404
    assert (
        b.patch(
            f"{CHANNELS}/{channel_id}/messages/{message_id}", {"content": "x"}, format="json"
        ).status_code
        == 404
    )
    assert (
        b.post(f"{CHANNELS}/{channel_id}/members", {"members": ["user-2"]}, format="json")
    ).status_code == 404
    assert b.get(CHANNELS).json()["pagination"]["total"] == 0
    assert a.get(f"{CHANNELS}/{channel_id}/messages").status_code == 200


def test_a_session_owner_reads_its_elizaos_conversation_over_rest(partners, mimi):
    a = partners["a"]
    created = a.post(
        ELIZA_SESSIONS, {"agentId": str(mimi.agent_id), "userId": USER_UUID}, format="json"
    ).json()
    a.post(
        f"{ELIZA_SESSIONS}/{created['sessionId']}/messages",
        {"content": "hello", "transport": "http"},
        format="json",
    )

    history = a.get(f"{CHANNELS}/{created['channelId']}/messages")

    assert history.status_code == 200
    assert [m["sender_type"] for m in history.json()["messages"]] == ["user", "agent"]


def test_an_external_user_id_grants_nothing_to_a_local_account_of_that_name(
    partners, mimi, make_user, make_api_key
):
    created = (
        partners["a"]
        .post(ELIZA_SESSIONS, {"agentId": str(mimi.agent_id), "userId": USER_UUID}, format="json")
        .json()
    )
    namesake = make_user(USER_UUID, roles=("messaging",))
    client = client_with(make_api_key(["messaging"], owner=namesake))

    assert client.get(f"{CHANNELS}/{created['channelId']}/messages").status_code == 404


# --- senders -----------------------------------------------------------------------------------


@pytest.fixture
def public_channel(partners):
    return (
        partners["a"]
        .post(CHANNELS, {"name": "lobby", "type": "public"}, format="json")
        .json()["channel_id"]
    )


def post(client: APIClient, channel_id: str, sender_id: str):
    return client.post(
        f"{CHANNELS}/{channel_id}/messages",
        {"sender_id": sender_id, "content": "hello"},
        format="json",
    )


def test_a_messaging_key_cannot_post_under_another_local_users_name(
    partners, public_channel, make_user
):
    make_user("alice")

    response = post(partners["a"], public_channel, "alice")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "sender_not_allowed"


def test_a_messaging_key_cannot_post_under_another_keys_id(partners, public_channel, root_client):
    other = rest_key(root_client, "other", ["messaging"])["owner"]

    response = post(partners["a"], public_channel, other)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "sender_not_allowed"


def test_a_messaging_key_cannot_post_as_an_agent(partners, public_channel, mimi):
    response = post(partners["a"], public_channel, "ceo_mimi")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_permissions"


def test_an_external_sender_id_and_the_callers_own_id_still_post(
    partners, public_channel, root_client
):
    external = post(partners["a"], public_channel, "user-1")

    assert external.status_code == 201
    assert external.json()["sender_id"] == "user-1"


def test_elizaos_submit_cannot_post_under_another_local_users_name(
    partners, public_channel, make_user
):
    make_user("alice")

    response = partners["a"].post(
        "/api/messaging/submit",
        {
            "channel_id": public_channel,
            "message_server_id": "00000000-0000-0000-0000-000000000000",
            "author_id": "alice",
            "content": "hello",
            "source_type": "test",
            "raw_message": {"text": "hello"},
        },
        format="json",
    )

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "sender_not_allowed"


def test_a_session_cannot_take_another_local_users_name_as_its_user_id(partners, mimi, make_user):
    make_user("alice")

    response = partners["a"].post(
        V1_SESSIONS, {"agent_id": "ceo_mimi", "user_id": "alice"}, format="json"
    )

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "sender_not_allowed"


def test_a_key_cannot_edit_another_principals_message_in_a_channel_both_see(
    partners, public_channel
):
    message_id = post(partners["a"], public_channel, "user-1").json()["message_id"]

    response = partners["b"].patch(
        f"{CHANNELS}/{public_channel}/messages/{message_id}", {"content": "edited"}, format="json"
    )

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_permissions"


def test_the_posting_key_and_an_admin_edit_a_message(partners, public_channel, root_client):
    message_id = post(partners["a"], public_channel, "user-1").json()["message_id"]
    url = f"{CHANNELS}/{public_channel}/messages/{message_id}"

    own = partners["a"].patch(url, {"content": "mine"}, format="json")
    admin = root_client.patch(url, {"content": "moderated"}, format="json")

    assert own.status_code == admin.status_code == 200


# --- channel owners ----------------------------------------------------------------------------


def test_a_key_cannot_add_members_to_a_channel_it_does_not_own(partners, public_channel):
    response = partners["b"].post(
        f"{CHANNELS}/{public_channel}/members", {"members": ["user-2"]}, format="json"
    )

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_permissions"


def test_a_key_cannot_remove_members_from_a_channel_it_does_not_own(partners, public_channel):
    partners["a"].post(
        f"{CHANNELS}/{public_channel}/members", {"members": ["user-2"]}, format="json"
    )

    response = partners["b"].delete(f"{CHANNELS}/{public_channel}/members/user-2")

    assert response.status_code == 403


def test_the_owner_and_an_agent_manager_change_members(partners, public_channel, client_as):
    url = f"{CHANNELS}/{public_channel}/members"

    by_owner = partners["a"].post(url, {"members": ["user-2"]}, format="json")
    by_manager = client_as("agent_manager").post(url, {"members": ["user-3"]}, format="json")

    assert by_owner.status_code == by_manager.status_code == 200


# --- roles at use ------------------------------------------------------------------------------


def test_a_key_made_by_a_demoted_admin_loses_its_roles(root, root_client):
    key = client_with(rest_key(root_client, "ops", ["admin"])["key"])
    before = key.get(KEYS).status_code

    root.groups.clear()

    assert before == 200
    assert key.get(KEYS).status_code == 403


def test_a_key_made_for_a_user_loses_the_roles_that_user_no_longer_holds(root_client, make_user):
    manager = make_user("manager", roles=("agent_manager", "messaging"))
    key = client_with(
        rest_key(root_client, "m", ["agent_manager", "messaging"], owner="manager")["key"]
    )
    before = key.post("/api/v1/agents", {}, format="json").status_code

    manager.groups.remove(Group.objects.get(name="agent_manager"))

    assert before == 400  # allowed, then refused for the empty body
    assert key.post("/api/v1/agents", {}, format="json").status_code == 403
    assert key.get(CHANNELS).status_code == 200


def test_create_api_key_without_user_makes_a_standalone_key():
    call_command("create_api_key", "--name", "ci", "--role", "messaging")

    key = ApiKey.objects.select_related("owner").get(name="ci")
    assert key.owner.username == f"key:{key.prefix}"
    assert not key.owner.has_usable_password()

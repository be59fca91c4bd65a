"""The owner-by-object matrix over REST, generated from the URL conf and the policy file: for
every route under /api/ that takes an id, every object of that id's kind and every principal
(two users, two standalone keys, two agent-manager keys, an admin), the owner and the admin
reach the object, a role the policy denies gets 403, and everyone else gets 404. A route whose
id has no ownership rule below fails, naming the route. The WebSocket half is
tests/realtime/test_owner_matrix.py."""

from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.test import override_settings
from rest_framework.response import Response
from rest_framework.test import APIClient

from agents.services import agent_create, agent_start
from system.auth.services import api_key_create, token_obtain
from system.kernel.policy import get_policy
from tests.system.api_routes import Operation, api_operations

pytestmark = pytest.mark.embedded

PASSWORD = "pw-123456!"
USER_UUID = "5f0c2b8e-3a4d-4c1e-9b7a-2d6e8f1a0c3b"

# One body for every call, valid where a route reads one: routes that validate the body before
# they look the object up must still answer 404 to a non-owner, not 400.
BODY = {"content": "hi", "sender_id": "user-1", "members": ["user-2"]}

# Which object kind a route's id names: (path prefix, id name) → kind. A route is matched on
# its last id (the object it acts on); the object carries the ids of the ones it lives in.
OWNERSHIP_RULES = {
    ("/api/v1/sessions/", "session_id"): "session",
    ("/api/messaging/sessions/", "session_id"): "eliza_session",
    ("/api/v1/channels/", "channel_id"): "channel",
    ("/api/v1/channels/", "message_id"): "message",
    ("/api/v1/channels/", "member_id"): "member",
    ("/api/workflows/", "workflow_id"): "workflow",
    ("/api/agents/csuite/meetings/", "meeting_id"): "meeting",
    ("/api/v1/auth/api-keys/", "key_id"): "api_key",
    ("/api/v1/system/tasks/", "task_id"): "system_task",
    ("/api/deploy/akash/", "deployment_id"): "deployment",
    ("/api/v1/agents/", "agent_id"): "agent",
    ("/api/v1/webhooks/", "webhook_id"): "webhook",
    ("/api/v1/webhooks/", "delivery_id"): "webhook_delivery",
}

PRINCIPAL_ROLES = {
    "admin": "admin",
    "alice": "messaging",  # a user, by group, with a JWT
    "bob": "messaging",
    "key_a": "messaging",  # a standalone key an admin made over REST
    "key_b": "messaging",
    "manager_a": "agent_manager",  # standalone agent_manager keys: workflows and meetings
    "manager_b": "agent_manager",
}

# Every object the matrix probes: name → (kind, owner).
OBJECTS = {
    "alice's session": ("session", "alice"),
    "key_a's session": ("session", "key_a"),
    "alice's ElizaOS session": ("eliza_session", "alice"),
    "key_a's ElizaOS session": ("eliza_session", "key_a"),
    "alice's private channel": ("channel", "alice"),
    "key_a's private channel": ("channel", "key_a"),
    "alice's public channel": ("channel", "alice"),
    "alice's message": ("message", "alice"),
    "alice's webhook": ("webhook", "alice"),
    "key_a's webhook": ("webhook", "key_a"),
    "alice's webhook delivery": ("webhook_delivery", "alice"),
    "key_a's webhook delivery": ("webhook_delivery", "key_a"),
    "key_a's message": ("message", "key_a"),
    "alice's public message": ("message", "alice"),
    "a member of alice's channel": ("member", "alice"),
    "a member of key_a's channel": ("member", "key_a"),
    "manager_a's workflow": ("workflow", "manager_a"),
    "manager_a's meeting": ("meeting", "manager_a"),
    "key_a's own API key": ("api_key", "key_a"),
    "admin's system task": ("system_task", "admin"),
    "admin's deployment": ("deployment", "admin"),
    "the running agent": ("agent", "admin"),
}

# Objects every role the policy lets act on them sees, whoever made them.
SHARED_BY_DESIGN = {
    "the running agent": "agents are the organisation's roster: every role that reads agents",
    "alice's public channel": "public channels are open to every role that reads channels",
    "alice's public message": "messages of a public channel are as public as the channel",
}


def kind_of(operation: Operation) -> str | None:
    """The kind of the object a route acts on, by its last id's name and the route's prefix."""
    name = operation.params[-1][0]
    rules = OWNERSHIP_RULES.items()
    return next((k for (p, n), k in rules if n == name and operation.template.startswith(p)), None)


ID_OPERATIONS = [o for o in api_operations() if o.params]


def outcome(operation: Operation, object_name: str, principal: str) -> str:
    """What the principal must get: `reach` (its own, or the admin), `shared`, `denied` (the
    policy refuses its role: 403) or `hidden` (404)."""
    _, owner = OBJECTS[object_name]
    rule = get_policy().actions.get(operation.action)
    if rule is None or PRINCIPAL_ROLES[principal] not in rule.roles:
        return "denied"
    if principal in (owner, "admin"):
        return "reach"
    return "shared" if object_name in SHARED_BY_DESIGN else "hidden"


def cases(wanted: str) -> list:
    return [
        pytest.param(o, name, p, id=f"{p}-{o.label}-{name}")
        for o in ID_OPERATIONS
        for name, (kind, _) in OBJECTS.items()
        if kind == kind_of(o)
        for p in PRINCIPAL_ROLES
        if outcome(o, name, p) == wanted
    ]


@dataclass
class World:
    clients: dict[str, APIClient]
    ids: dict[str, dict[str, Any]]

    def call(self, operation: Operation, object_name: str, principal: str) -> Response:
        client = self.clients[principal]
        url = operation.url(**self.ids[object_name])
        return getattr(client, operation.method)(url, BODY, format="json")


def created(client: APIClient, url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(url, body, format="json")
    assert response.status_code in (200, 201, 202), response.content
    return response.json()


def key_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=key)
    return client


def user_client(username: str, role: str) -> APIClient:
    user = get_user_model().objects.create_user(username=username, password=PASSWORD)
    user.groups.set(Group.objects.filter(name=role))
    client = APIClient()
    access = token_obtain(username=username, password=PASSWORD)["access"]
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def owned_objects(client: APIClient, owner: str, agent_id: str) -> dict[str, dict[str, Any]]:
    """A session of each API, a private channel with an external member and a message, a
    webhook endpoint (to a loopback receiver) and its test delivery."""
    session = created(client, "/api/v1/sessions", {"agent_id": "ceo_mimi", "user_id": "user-1"})
    eliza = created(client, "/api/messaging/sessions", {"agentId": agent_id, "userId": USER_UUID})
    channel = created(
        client,
        "/api/v1/channels",
        {"name": f"{owner}-board", "type": "private", "members": ["user-1"]},
    )["channel_id"]
    message = created(
        client, f"/api/v1/channels/{channel}/messages", {"sender_id": "user-1", "content": "hi"}
    )["message_id"]
    with override_settings(WEBHOOK_ALLOW_HTTP=True, WEBHOOK_ALLOW_PRIVATE=True):
        webhook = created(
            client, "/api/v1/webhooks", {"url": "http://127.0.0.1:9/hook", "event_types": ["*"]}
        )["id"]
    delivery = created(client, f"/api/v1/webhooks/{webhook}/test", {})["id"]
    return {
        f"{owner}'s session": {"session_id": session["session_id"]},
        f"{owner}'s ElizaOS session": {"session_id": eliza["sessionId"]},
        f"{owner}'s private channel": {"channel_id": channel},
        f"{owner}'s message": {"channel_id": channel, "message_id": message},
        f"a member of {owner}'s channel": {"channel_id": channel, "member_id": "user-1"},
        f"{owner}'s webhook": {"webhook_id": webhook},
        f"{owner}'s webhook delivery": {"webhook_id": webhook, "delivery_id": delivery},
    }


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """Principals and objects, built once through the API; rolled back after the module.
    Each test runs in a savepoint inside this transaction, so what one test ends, deletes or
    revokes is back for the next."""
    with django_db_blocker.unblock(), transaction.atomic():
        mimi = agent_start(agent=agent_create(name="ceo_mimi", type="ceo_mimi"))
        root = get_user_model().objects.create_user(username="root", password=PASSWORD)
        root.groups.set(Group.objects.filter(name="admin"))
        admin = key_client(api_key_create(name="admin", roles=["admin"], owner=root)[1])
        keys = {
            name: created(admin, "/api/v1/auth/api-keys", {"name": name, "roles": [role]})
            for name, role in PRINCIPAL_ROLES.items()
            if name.startswith(("key_", "manager_"))
        }
        clients = {
            "admin": admin,
            "alice": user_client("alice", "messaging"),
            "bob": user_client("bob", "messaging"),
            **{name: key_client(body["key"]) for name, body in keys.items()},
        }
        ids = {
            **owned_objects(clients["alice"], "alice", str(mimi.agent_id)),
            **owned_objects(clients["key_a"], "key_a", str(mimi.agent_id)),
        }
        public = created(
            clients["alice"], "/api/v1/channels", {"name": "town", "type": "public", "members": []}
        )["channel_id"]
        public_message = created(
            clients["alice"],
            f"/api/v1/channels/{public}/messages",
            {"sender_id": "user-1", "content": "hello all"},
        )["message_id"]
        manager = clients["manager_a"]
        workflow = created(
            manager, "/api/workflows", {"steps": [{"agent": "ceo_mimi", "instruction": "Plan"}]}
        )["id"]
        meeting = created(
            manager, "/api/agents/csuite/meeting", {"participants": ["CEO"], "agenda": ["Hiring"]}
        )["meetingId"]
        task = created(admin, "/api/v1/system/tasks", {"task_type": "clear_cache"})["task_id"]
        deployment = created(
            admin,
            "/api/deploy/akash",
            {"name": "site", "config": {"cpu": 1, "memory": "1GB", "storage": "10GB"}},
        )["deploymentId"]
        ids |= {
            "alice's public channel": {"channel_id": public},
            "alice's public message": {"channel_id": public, "message_id": public_message},
            "manager_a's workflow": {"workflow_id": workflow},
            "manager_a's meeting": {"meeting_id": meeting},
            "key_a's own API key": {"key_id": keys["key_a"]["id"]},
            "admin's system task": {"task_id": task},
            "admin's deployment": {"deployment_id": deployment},
            "the running agent": {"agent_id": str(mimi.agent_id)},
        }
        yield World(clients=clients, ids=ids)
        transaction.set_rollback(True)


@pytest.mark.parametrize("operation", ID_OPERATIONS, ids=[o.label for o in ID_OPERATIONS])
def test_every_route_that_takes_an_id_has_an_ownership_rule(operation):
    assert kind_of(operation) is not None, (
        f"add an ownership rule for {operation.label} ({operation.params[-1][0]}) to "
        "OWNERSHIP_RULES, and its objects to OBJECTS"
    )


@pytest.mark.parametrize("kind", sorted(set(OWNERSHIP_RULES.values())))
def test_every_object_kind_has_an_object_in_the_matrix(kind):
    assert kind in {k for k, _ in OBJECTS.values()}


def test_the_matrix_covers_every_route_that_takes_an_id():
    probed = {c.values[0] for w in ("reach", "shared", "denied", "hidden") for c in cases(w)}

    assert probed == set(ID_OPERATIONS)
    assert len(ID_OPERATIONS) >= 30


@pytest.mark.django_db
@pytest.mark.parametrize("operation, object_name, principal", cases("reach"))
def test_the_owner_and_the_admin_reach_the_object(operation, object_name, principal, world):
    response = world.call(operation, object_name, principal)

    assert response.status_code not in (401, 403, 404), response.content


@pytest.mark.django_db
@pytest.mark.parametrize("operation, object_name, principal", cases("shared"))
def test_a_shared_object_is_found_by_every_role_the_policy_allows(
    operation, object_name, principal, world
):
    response = world.call(operation, object_name, principal)

    assert response.status_code not in (401, 404), response.content


@pytest.mark.django_db
@pytest.mark.parametrize("operation, object_name, principal", cases("hidden"))
def test_another_principals_object_is_404(operation, object_name, principal, world):
    response = world.call(operation, object_name, principal)

    assert response.status_code == 404, response.content


@pytest.mark.django_db
@pytest.mark.parametrize("operation, object_name, principal", cases("denied"))
def test_a_role_the_policy_denies_gets_403_whoever_owns_the_object(
    operation, object_name, principal, world
):
    response = world.call(operation, object_name, principal)

    assert response.status_code == 403, response.content
    assert response.json()["error"]["code"] == "insufficient_permissions"

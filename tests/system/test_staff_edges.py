"""The back office's staff edges: state-changing actions need a change permission, keys carry
only roles their maker holds, and a new key's secret never stays on the shared ModelAdmin."""

import re

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission

from agents.models import Agent
from agents.services import agent_create, agent_start
from questflow.models import Deployment, Workflow
from sessions_app.models import Session
from system.models import ApiKey

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

DEPLOY = {"name": "my-deployment", "config": {"cpu": 1, "memory": "1GB", "storage": "10GB"}}


def grant(user, *codenames: str) -> None:
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))


@pytest.fixture
def viewer(client, make_user):
    """A logged-in staff client whose user holds only the view_* permissions it is granted."""

    def login(*codenames: str):
        user = make_user("viewer", is_staff=True)
        grant(user, *codenames)
        client.force_login(user)
        return client

    return login


@pytest.fixture
def mimi():
    return agent_start(agent=agent_create(name="ceo_mimi", type="ceo_mimi"))


def test_view_only_staff_cannot_start_agents(viewer):
    agent = agent_create(name="cfo_cash", type="cfo_cash")
    client = viewer("view_agent")

    page = client.get("/admin/agents/agent/")
    client.post("/admin/agents/agent/", {"action": "start", "_selected_action": [agent.pk]})

    assert page.status_code == 200
    assert b'value="start"' not in page.content
    assert Agent.objects.get(pk=agent.pk).status == Agent.Status.CREATED


def test_view_only_staff_cannot_end_sessions(viewer, mimi, client_as):
    body = {"agent_id": "ceo_mimi", "user_id": "user-1"}
    session_id = client_as("admin").post("/api/v1/sessions", body, format="json").json()
    session = Session.objects.get()
    client = viewer("view_session")

    page = client.get("/admin/sessions_app/session/")
    client.post("/admin/sessions_app/session/", {"action": "end", "_selected_action": [session.pk]})

    assert session_id
    assert b'value="end"' not in page.content
    assert Session.objects.get().status == Session.Status.ACTIVE


def test_staff_with_change_session_may_end_sessions(viewer, mimi, client_as):
    body = {"agent_id": "ceo_mimi", "user_id": "user-1"}
    client_as("admin").post("/api/v1/sessions", body, format="json")
    session = Session.objects.get()
    client = viewer("view_session", "change_session")

    client.post("/admin/sessions_app/session/", {"action": "end", "_selected_action": [session.pk]})

    assert Session.objects.get().status == Session.Status.ENDED


def test_view_only_staff_cannot_cancel_workflows(viewer, client_as):
    for agent_type in ("cto_alex", "cpo_agent", "cmo_anova"):
        agent_start(agent=agent_create(name=agent_type, type=agent_type))
    body = {"template": "Plugin Development", "input": {"plugin": "Slack bridge"}}
    client_as("agent_manager").post("/api/workflows", body, format="json")
    workflow = Workflow.objects.get()
    client = viewer("view_workflow")

    page = client.get("/admin/questflow/workflow/")
    client.post(
        "/admin/questflow/workflow/", {"action": "cancel", "_selected_action": [workflow.pk]}
    )

    assert b'value="cancel"' not in page.content
    assert Workflow.objects.get().status == workflow.status


@pytest.fixture
def failed_deployment(client_as):
    client_as("admin").post("/api/deploy/akash", DEPLOY, format="json")
    Deployment.objects.update(status=Deployment.Status.FAILED)
    return Deployment.objects.get()


def test_view_only_staff_cannot_resubmit_deployments(viewer, failed_deployment):
    client = viewer("view_deployment")

    page = client.get("/admin/questflow/deployment/")
    client.post(
        "/admin/questflow/deployment/",
        {"action": "resubmit", "_selected_action": [failed_deployment.pk]},
    )

    assert b'value="resubmit"' not in page.content
    assert Deployment.objects.get().status == Deployment.Status.FAILED


def test_resubmit_queues_the_submit_task_instead_of_running_the_backend(
    client, make_user, failed_deployment, django_capture_on_commit_callbacks, monkeypatch
):
    from questflow import akash

    def fail_if_called(**kwargs):
        raise AssertionError("the backend ran inside the request")

    monkeypatch.setattr(akash, "submit", fail_if_called)
    client.force_login(make_user("chief", is_staff=True, is_superuser=True))

    with django_capture_on_commit_callbacks() as callbacks:
        client.post(
            "/admin/questflow/deployment/",
            {"action": "resubmit", "_selected_action": [failed_deployment.pk]},
        )

    assert Deployment.objects.get().status == Deployment.Status.INITIATED
    assert len(callbacks) == 1


# --- API keys -------------------------------------------------------------------------------


def add_key(client, **fields):
    data = {"name": "from admin", "expires_at_0": "", "expires_at_1": "", **fields}
    return client.post("/admin/system/apikey/add/", data, follow=True)


@pytest.fixture
def key_minter(client, make_user):
    """A staff user holding the messaging role and add_apikey, logged in."""
    user = make_user("minter", roles=("messaging",), is_staff=True)
    grant(user, "add_apikey", "view_apikey")
    client.force_login(user)
    return client, user


def test_staff_cannot_mint_a_key_with_a_role_they_do_not_hold(key_minter):
    client, user = key_minter

    response = add_key(client, owner=user.pk, role_choices=["admin"])

    assert response.status_code == 200
    assert b"371os_" not in response.content
    assert not ApiKey.objects.filter(name="from admin").exists()


def test_staff_cannot_mint_a_key_for_another_user(key_minter, make_user):
    client, _ = key_minter
    other = make_user("other", roles=("admin",))

    add_key(client, owner=other.pk, role_choices=["messaging"])

    assert not ApiKey.objects.filter(name="from admin").exists()


def test_staff_may_mint_a_key_with_a_role_they_hold_for_themselves(key_minter):
    client, user = key_minter

    response = add_key(client, owner=user.pk, role_choices=["messaging"])

    assert re.search(rb"371os_[0-9a-f]+_[0-9a-f]+", response.content)
    api_key = ApiKey.objects.get(name="from admin")
    assert (api_key.owner, api_key.roles) == (user, "messaging")


def test_superuser_may_mint_any_role_for_another_user(client, make_user):
    client.force_login(make_user("chief", is_staff=True, is_superuser=True))
    other = make_user("other")

    add_key(client, owner=other.pk, role_choices=["admin", "messaging"])

    api_key = ApiKey.objects.get(name="from admin")
    assert (api_key.owner, api_key.roles) == (other, "admin,messaging")


def test_the_api_key_admin_keeps_no_secret_after_a_request(client, make_user):
    client.force_login(make_user("chief", is_staff=True, is_superuser=True))

    response = add_key(client, role_choices=["messaging"])

    key = re.search(r"371os_[0-9a-f]+_[0-9a-f]+", response.content.decode()).group(0)
    model_admin = admin.site._registry[ApiKey]
    assert key.split("_")[2] not in repr(vars(model_admin))
    assert not hasattr(model_admin, "_created")


def test_staff_who_may_change_users_cannot_grant_themselves_roles(client, make_user):
    user = make_user("changer", is_staff=True)
    grant(user, "view_user", "change_user")
    client.force_login(user)

    page = client.get(f"/admin/auth/user/{user.pk}/change/")

    assert page.status_code == 200
    assert b'name="groups"' not in page.content
    assert b'name="is_superuser"' not in page.content

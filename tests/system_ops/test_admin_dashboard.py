"""The back office: the system dashboard (linked from the index, refreshing itself, running
system tasks through the service) and the read-only SystemTask admin."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from agents.services import agent_create, agent_start
from sessions_app import timeouts
from sessions_app.services import session_create
from system.models import SystemTask
from system.ops.system_tasks import system_task_create, system_task_run

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

DASHBOARD = "/admin/system/systemtask/dashboard/"


@pytest.fixture
def superuser_client(client, make_user):
    client.force_login(make_user("chief", is_staff=True, is_superuser=True))
    return client


def test_the_admin_index_links_the_dashboard(superuser_client):
    page = superuser_client.get("/admin/").content.decode()

    assert reverse("admin:system_dashboard") == DASHBOARD
    assert f'href="{DASHBOARD}"' in page


def test_dashboard_shows_status_counts_tasks_and_errors_and_refreshes_itself(
    superuser_client, fresh_worker
):
    ok = system_task_create(task_type="clear_cache")
    system_task_run(task_id=ok.task_id)
    failed = system_task_create(task_type="reload_config")
    SystemTask.objects.filter(pk=failed.pk).update(
        status=SystemTask.Status.FAILED, error="rules.yaml:3: unknown role 'wizard'"
    )

    response = superuser_client.get(DASHBOARD)

    assert response.status_code == 200
    page = response.content.decode()
    assert '<meta http-equiv="refresh" content="10">' in page
    assert 'id="overall-status" class="dashboard-state-healthy"' in page
    for service in ("api_gateway", "agent_orchestrator", "message_broker", "database", "cache"):
        assert service in page
    assert "requests_per_minute" in page
    assert "system tasks" in page
    assert "unknown role &#x27;wizard&#x27;" in page
    assert response.context["recent_errors"][0].pk == failed.pk
    assert [t.pk for t in response.context["recent_tasks"]] == [failed.pk, ok.pk]


def test_dashboard_counts_agents_and_sessions_by_status(superuser_client, make_user):
    mimi = agent_start(agent=agent_create(name="ceo_mimi", type="ceo_mimi"))
    agent_create(name="cfo_cash", type="cfo_cash")
    session_create(
        agent=mimi, user_id="user-1", owner=make_user("owner"), config=timeouts.defaults()
    )

    counts = superuser_client.get(DASHBOARD).context["counts"]

    assert counts["agents"] == {"created": 1, "running": 1}
    assert counts["sessions"] == {"active": 1}
    assert counts["system tasks"] == {}


def test_the_run_buttons_queue_a_task_through_the_service(
    superuser_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = superuser_client.post(
            reverse("admin:system_dashboard_run"), {"task_type": "reload_config"}
        )

    assert response.status_code == 302
    assert response["Location"] == DASHBOARD
    task = SystemTask.objects.get()
    assert task.task_type == "reload_config"
    assert task.requested_by.username == "chief"
    assert len(callbacks) == 1


def test_staff_without_the_admin_role_cannot_run_tasks(client, make_user):
    staff = make_user("viewer", is_staff=True, roles=("system_monitor",))
    staff.user_permissions.add(Permission.objects.get(codename="view_systemtask"))
    client.force_login(staff)

    page = client.get(DASHBOARD)
    run = client.post(reverse("admin:system_dashboard_run"), {"task_type": "clear_cache"})

    assert page.status_code == 200
    assert "needs the admin role" in page.content.decode()
    assert run.status_code == 403
    assert not SystemTask.objects.exists()


def test_system_task_admin_is_read_only_with_its_result(superuser_client):
    task = system_task_create(task_type="clear_cache")
    system_task_run(task_id=task.task_id)

    add = superuser_client.get("/admin/system/systemtask/add/")
    detail = superuser_client.get(f"/admin/system/systemtask/{task.pk}/change/")

    assert add.status_code == 403
    assert detail.status_code == 200
    assert "deleted_keys" in detail.content.decode()
    assert 'name="_save"' not in detail.content.decode()

"""Who may do what on the system operations API (config/routing_rules.yaml)."""

import pytest

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

STATUS, CONFIG, TASKS = "/api/v1/system/status", "/api/v1/system/config", "/api/v1/system/tasks"
TASK = {"task_type": "clear_cache"}


@pytest.mark.parametrize("role", ["admin", "agent_manager", "messaging", "system_monitor"])
def test_every_role_reads_the_status(client_as, role):
    assert client_as(role).get(STATUS).status_code == 200


def test_system_monitor_reads_status_but_gets_403_on_config_and_tasks(client_as):
    monitor = client_as("system_monitor")

    assert monitor.get(STATUS).status_code == 200
    assert monitor.get(TASKS).status_code == 403
    config = monitor.get(CONFIG)
    run = monitor.post(TASKS, TASK, format="json")
    assert config.status_code == 403
    assert config.json()["error"]["details"]["action"] == "system.config.read"
    assert run.status_code == 403
    assert run.json()["error"]["details"]["action"] == "system.tasks.run"


@pytest.mark.parametrize("role", ["agent_manager", "messaging"])
def test_non_admins_get_403_on_config_and_tasks(client_as, role):
    client = client_as(role)

    assert client.get(CONFIG).status_code == 403
    assert client.get(TASKS).status_code == 403
    assert client.post(TASKS, TASK, format="json").status_code == 403


def test_anonymous_gets_401_everywhere(api_client):
    for path in (STATUS, CONFIG, TASKS):
        assert api_client.get(path).status_code == 401

"""The agents REST API through the real URLs."""

import uuid

import pytest

from agents.models import Agent
from agents.services import agent_create, agent_start
from system.models import EventLogEntry

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

URL = "/api/v1/agents"


@pytest.fixture
def manager(client_as):
    return client_as("agent_manager")


def create(client, **body):
    return client.post(
        URL, {"name": "marketing-assistant", "type": "cmo_anova", **body}, format="json"
    )


def error_of(response) -> dict:
    return response.json()["error"]


def test_create_returns_201_with_the_spec_shape_and_defaults(manager):
    response = create(
        manager,
        config={"model": "gpt-4", "temperature": 0.2, "max_tokens": 1000},
        skills=["content_generation"],
    )

    assert response.status_code == 201
    body = response.json()
    uuid.UUID(body["agent_id"])
    assert body["name"] == "marketing-assistant"
    assert body["type"] == "cmo_anova"
    assert body["status"] == "created"
    assert body["config"]["model"] == "gpt-4"
    assert body["config"]["temperature"] == 0.2
    assert body["config"]["max_tokens"] == 1000
    assert body["config"]["top_p"] == 1.0
    assert body["skills"] == ["content_generation"]
    assert Agent.objects.get(pk=body["agent_id"]).system_prompt.startswith("You are Anova, the CMO")


def test_create_uses_the_types_default_skills(manager):
    body = create(manager).json()

    assert body["skills"] == ["content_generation", "market_analysis", "campaign_planning"]


def test_duplicate_name_is_409_agent_name_taken(manager):
    create(manager)

    response = create(manager)

    assert response.status_code == 409
    assert error_of(response)["code"] == "agent_name_taken"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "cxo_nobody"}, "type"),
        ({"name": "has spaces"}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"config": {"temperature": 2.5}}, "config.temperature"),
        ({"config": {"temperature": True}}, "config.temperature"),
        ({"config": {"top_p": -0.1}}, "config.top_p"),
        ({"config": {"frequency_penalty": 3}}, "config.frequency_penalty"),
        ({"config": {"presence_penalty": -2.5}}, "config.presence_penalty"),
        ({"config": {"max_tokens": 0}}, "config.max_tokens"),
        ({"config": {"max_tokens": 200001}}, "config.max_tokens"),
        ({"config": {"model": ""}}, "config.model"),
        ({"config": {"colour": "blue"}}, "config.colour"),
        ({"config": {"daily_budget_usd": -1}}, "config.daily_budget_usd"),
        ({"skills": ["x" * 65]}, "skills"),
        ({"skills": [f"s{i}" for i in range(51)]}, "skills"),
        ({"skills": "not a list"}, "skills"),
    ],
)
def test_invalid_fields_are_400_invalid_agent_config_naming_the_field(manager, body, field):
    response = create(manager, **body)

    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_agent_config"
    assert field in error["details"]


def test_unknown_model_error_lists_the_configured_aliases(manager):
    response = create(manager, config={"model": "gpt-99"})

    message = error_of(response)["details"]["config.model"][0]
    assert "gpt-99" in message
    assert "gpt-4" in message
    assert "builtin" in message


def test_every_problem_is_reported_at_once(manager):
    response = create(manager, name="bad name", config={"temperature": 9, "top_p": 9})

    assert set(error_of(response)["details"]) == {"name", "config.temperature", "config.top_p"}
    assert not Agent.objects.exists()


def test_start_and_stop_follow_the_lifecycle(manager):
    agent_id = create(manager).json()["agent_id"]

    started = manager.post(f"{URL}/{agent_id}/start")
    again = manager.post(f"{URL}/{agent_id}/start")
    stopped = manager.post(f"{URL}/{agent_id}/stop")
    stopped_again = manager.post(f"{URL}/{agent_id}/stop")

    assert started.status_code == 200
    assert started.json()["status"] == "running"
    assert set(started.json()) == {"agent_id", "status", "started_at"}
    assert again.status_code == 409
    assert error_of(again)["code"] == "agent_already_running"
    assert stopped.status_code == 200
    assert set(stopped.json()) == {"agent_id", "status", "stopped_at"}
    assert stopped.json()["status"] == "stopped"
    assert stopped_again.status_code == 409
    assert error_of(stopped_again)["code"] == "agent_not_running"


def test_starting_from_error_clears_the_reason(manager):
    agent = agent_create(name="flaky", type="custom")
    Agent.objects.filter(pk=agent.pk).update(status="error", status_reason="providers down")

    response = manager.post(f"{URL}/flaky/start")

    agent.refresh_from_db()
    assert response.status_code == 200
    assert (agent.status, agent.status_reason) == ("running", "")


def test_status_changes_emit_agent_status_update_events(manager):
    agent_id = create(manager).json()["agent_id"]
    manager.post(f"{URL}/{agent_id}/start")
    manager.post(f"{URL}/{agent_id}/stop")

    events = EventLogEntry.objects.filter(event_type="agent_status_update").order_by("event_id")

    assert [e.payload["status"] for e in events] == ["created", "running", "stopped"]
    assert {str(e.agent_id) for e in events} == {agent_id}
    assert set(events[0].payload) >= {"agent_id", "status", "timestamp"}


def test_a_failed_change_emits_nothing(manager):
    agent_id = create(manager).json()["agent_id"]
    before = EventLogEntry.objects.count()

    manager.post(f"{URL}/{agent_id}/stop")  # 409: not running

    assert EventLogEntry.objects.count() == before


def test_detail_accepts_uuid_or_name_and_has_performance_metrics(manager):
    agent_id = create(manager).json()["agent_id"]

    by_id = manager.get(f"{URL}/{agent_id}")
    by_name = manager.get(f"{URL}/marketing-assistant")

    assert by_id.status_code == by_name.status_code == 200
    assert by_id.json()["agent_id"] == by_name.json()["agent_id"] == agent_id
    metrics = by_id.json()["performance_metrics"]
    assert set(metrics) >= {
        "response_time_ms",
        "success_rate",
        "task_completion_rate",
        "error_count",
    }
    assert by_id["Cache-Control"] == "private, max-age=15"


def test_unknown_agent_is_404_agent_not_found(manager):
    for ref in (str(uuid.uuid4()), "nobody"):
        response = manager.get(f"{URL}/{ref}")
        assert response.status_code == 404
        assert error_of(response)["code"] == "agent_not_found"


def test_list_filters_by_status_and_type_and_paginates(manager):
    for i in range(3):
        agent_create(name=f"ceo-{i}", type="ceo_mimi")
    running = agent_create(name="cfo-1", type="cfo_cash")
    agent_start(agent=running)

    by_status = manager.get(f"{URL}?status=running").json()
    by_type = manager.get(f"{URL}?type=ceo_mimi&limit=2&page=2").json()

    assert [a["name"] for a in by_status["agents"]] == ["cfo-1"]
    assert by_status["pagination"] == {"page": 1, "limit": 20, "total": 1}
    assert [a["name"] for a in by_type["agents"]] == ["ceo-2"]
    assert by_type["pagination"] == {"page": 2, "limit": 2, "total": 3}
    assert set(by_status["agents"][0]) == {
        "agent_id",
        "name",
        "type",
        "status",
        "created_at",
        "last_active",
    }


def test_list_page_past_the_end_is_empty_and_limit_is_capped(manager):
    agent_create(name="solo", type="custom")

    past = manager.get(f"{URL}?page=5").json()
    capped = manager.get(f"{URL}?limit=500").json()

    assert past["agents"] == []
    assert past["pagination"]["total"] == 1
    assert capped["pagination"]["limit"] == 100


def test_list_rejects_an_unknown_status_filter(manager):
    response = manager.get(f"{URL}?status=sleeping")

    assert response.status_code == 400
    assert "status" in error_of(response)["details"]


def test_list_is_cached_with_an_etag_that_changes_on_a_write(
    manager, django_capture_on_commit_callbacks
):
    first = manager.get(URL)
    assert first["Cache-Control"] == "private, max-age=30"
    assert manager.get(URL, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304

    with django_capture_on_commit_callbacks(execute=True):
        create(manager)

    assert manager.get(URL, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 200


def test_list_runs_a_fixed_number_of_queries(manager, django_assert_max_num_queries):
    for i in range(15):
        agent_create(name=f"a{i}", type="custom")

    with django_assert_max_num_queries(6):
        assert len(manager.get(URL).json()["agents"]) == 15


def test_detail_runs_a_fixed_number_of_queries(manager, django_assert_max_num_queries):
    agent_id = create(manager).json()["agent_id"]
    manager.get(f"{URL}/{agent_id}")  # the key's last_used_at, written at most once a minute

    # The key, the agent, its ledger figures (one aggregate).
    with django_assert_max_num_queries(3):
        assert manager.get(f"{URL}/{agent_id}").status_code == 200


def test_patch_changes_config_skills_prompt_and_name(manager):
    agent_id = create(manager).json()["agent_id"]

    response = manager.patch(
        f"{URL}/{agent_id}",
        {
            "name": "anova",
            "config": {"temperature": 1.5},
            "skills": ["seo"],
            "system_prompt": "Be brief.",
        },
        format="json",
    )

    body = response.json()
    assert response.status_code == 200
    assert (body["name"], body["skills"], body["system_prompt"]) == ("anova", ["seo"], "Be brief.")
    assert body["config"]["temperature"] == 1.5
    assert body["config"]["model"] == "gpt-4"  # untouched fields keep their values


def test_patch_with_invalid_config_changes_nothing(manager):
    agent_id = create(manager).json()["agent_id"]

    response = manager.patch(f"{URL}/{agent_id}", {"config": {"top_p": 7}}, format="json")

    assert response.status_code == 400
    assert Agent.objects.get(pk=agent_id).config["top_p"] == 1.0


def test_patch_to_a_taken_name_is_409(manager):
    create(manager)
    other = create(manager, name="other").json()["agent_id"]

    response = manager.patch(f"{URL}/{other}", {"name": "marketing-assistant"}, format="json")

    assert response.status_code == 409


def test_delete_stops_a_running_agent_first_and_answers_204(manager):
    agent_id = create(manager).json()["agent_id"]
    manager.post(f"{URL}/{agent_id}/start")

    response = manager.delete(f"{URL}/{agent_id}")

    assert response.status_code == 204
    assert not Agent.objects.filter(pk=agent_id).exists()
    statuses = [
        e.payload["status"]
        for e in EventLogEntry.objects.filter(agent_id=agent_id).order_by("event_id")
    ]
    assert statuses[-1] == "stopped"


def test_deprecated_restart_works_and_says_it_is_deprecated(manager):
    agent_id = create(manager).json()["agent_id"]
    manager.post(f"{URL}/{agent_id}/start")

    response = manager.post(f"{URL}/{agent_id}/restart")

    assert response.status_code == 200
    assert response.json()["status"] == "running"
    assert response["Deprecation"].startswith("@")
    assert "Sunset" in response
    assert 'rel="deprecation"' in response["Link"]


def test_deprecated_active_lists_running_agents(manager):
    agent_start(agent=agent_create(name="on", type="custom"))
    agent_create(name="off", type="custom")

    response = manager.get(f"{URL}/active")

    assert [a["name"] for a in response.json()["agents"]] == ["on"]
    assert response["Deprecation"].startswith("@")


def test_put_is_not_allowed(manager):
    agent_id = create(manager).json()["agent_id"]

    assert manager.put(f"{URL}/{agent_id}", {}, format="json").status_code == 405


def test_messaging_role_reads_but_cannot_create(client_as):
    messaging = client_as("messaging")

    assert messaging.get(URL).status_code == 200
    assert create(messaging).status_code == 403


def test_admin_agent_list_shows_each_agents_model(client, make_user):
    agent_create(name="modelled", type="custom", config={"model": "builtin"})
    client.force_login(make_user("staff", is_staff=True, is_superuser=True))

    page = client.get("/admin/agents/agent/").content.decode()

    assert '<td class="field-provider_model">builtin → builtin/' in page

"""Workflows: templates and custom steps, one Celery task per step (eager here), progress and
events, failures, cancellation, and idempotent redelivery."""

import uuid
from datetime import timedelta

import pytest
import yaml
from django.utils import timezone

from agents.runtime import router_reload
from agents.services import agent_create, agent_start, agent_stop
from config.celery import app as celery_app
from questflow.models import Workflow, WorkflowStep
from questflow.services.workflows import _step_prompt as step_prompt
from questflow.tasks import run_workflow_step
from system.devserver.embedded_redis import free_port
from system.models import EventLogEntry

# Real commits, so that enqueue-on-commit fires when each request's transaction commits.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.embedded]

URL = "/api/workflows"


@pytest.fixture
def executives():
    return {
        t: agent_start(agent=agent_create(name=t, type=t))
        for t in ("cto_alex", "cpo_agent", "cmo_anova")
    }


@pytest.fixture
def eager():
    """Celery tasks run in-process, at once."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def start(client, **body):
    return client.post(
        URL,
        {"template": "Plugin Development", "input": {"plugin": "Slack bridge"}, **body},
        format="json",
    )


def test_plugin_development_runs_every_step_in_order(client_as, executives, eager):
    response = start(client_as("agent_manager"))

    assert response.status_code == 202
    workflow = Workflow.objects.get(pk=response.json()["id"])
    assert workflow.status == "completed"
    assert workflow.progress == 100
    steps = list(workflow.steps.order_by("position"))
    assert [s.agent_ref for s in steps] == ["cto_alex", "cpo_agent", "cmo_anova"]
    assert all(s.status == "completed" and s.output for s in steps)
    assert "Alex, CTO" in steps[0].output and "Slack bridge" in steps[0].output
    prompt = step_prompt(workflow, steps[2])[0].content
    assert steps[0].output in prompt and steps[1].output in prompt  # earlier outputs carried
    assert "Slack bridge" in prompt
    assert workflow.result["outputs"] == [s.output for s in steps]


def test_progress_is_announced_with_workflow_update_events(client_as, executives, eager):
    workflow_id = start(client_as("agent_manager")).json()["id"]

    events = EventLogEntry.objects.filter(event_type="workflow_update", payload__id=workflow_id)
    progress = [e.payload["progress"] for e in events.order_by("event_id")]

    assert progress[0] == 0
    assert progress[-1] == 100
    assert {33, 67} <= set(progress)
    assert events.order_by("event_id").last().payload["status"] == "completed"


def test_the_detail_shows_steps_and_outputs(client_as, executives, eager):
    client = client_as("agent_manager")
    workflow_id = start(client).json()["id"]

    body = client.get(f"{URL}/{workflow_id}").json()

    assert body["status"] == "completed"
    assert [s["status"] for s in body["steps"]] == ["completed"] * 3
    assert body["steps"][2]["output"]


def test_status_lists_active_workflows_in_the_specs_shape(client_as, executives):
    workflow_id = start(client_as("agent_manager")).json()["id"]  # not eager: stays pending

    listing = client_as("system_monitor").get(f"{URL}/status")

    assert listing.status_code == 200
    assert listing.json() == [
        {
            "id": workflow_id,
            "name": "Plugin Development",
            "status": "pending",
            "progress": 0,
            "startTime": listing.json()[0]["startTime"],
        }
    ]


def test_custom_steps_run_too(client_as, executives, eager):
    steps = [{"agent": "cto_alex", "instruction": "Estimate the work."}]

    body = (
        client_as("agent_manager")
        .post(URL, {"steps": steps, "name": "Estimate"}, format="json")
        .json()
    )

    assert Workflow.objects.get(pk=body["id"]).status == "completed"
    assert body["name"] == "Estimate"


@pytest.mark.parametrize(
    "body",
    [
        {"template": "Nope"},
        {},
        {"template": "Plugin Development", "steps": [{"agent": "x", "instruction": "y"}]},
        {"steps": []},
        {"steps": [{"agent": "cto_alex"}]},
        {"template": "Plugin Development", "input": ["not", "an", "object"]},
    ],
)
def test_bad_requests_are_400(client_as, body):
    response = client_as("agent_manager").post(URL, body, format="json")

    assert response.status_code == 400
    assert not Workflow.objects.exists()


def test_a_step_without_a_running_agent_fails_the_workflow_with_the_reason(
    client_as, executives, eager
):
    agent_stop(agent=executives["cpo_agent"])

    workflow = Workflow.objects.get(pk=start(client_as("agent_manager")).json()["id"])

    assert workflow.status == "failed"
    assert "cpo_agent" in workflow.error
    assert list(workflow.steps.values_list("status", flat=True)) == [
        "completed",
        "failed",
        "pending",
    ]


def test_a_runtime_failing_after_retries_fails_the_workflow(
    client_as, executives, eager, tmp_path, settings, monkeypatch
):
    routing = {
        "providers": {
            "dead": {
                "kind": "openai",
                "base_url": f"http://127.0.0.1:{free_port()}/v1",
                "api_key_env": "DEAD_KEY",
                "timeout_seconds": 1,
            }
        },
        "circuit_breaker": {"failures": 100, "cooldown_seconds": 30},
        "models": {
            "gpt-4": [
                {"provider": "dead", "model": "m", "cost_per_1k_input": 0, "cost_per_1k_output": 0}
            ]
        },
    }
    (tmp_path / "routing.yaml").write_text(yaml.safe_dump(routing))
    settings.LLM_ROUTING_PATH = tmp_path / "routing.yaml"
    settings.WORKFLOW_STEP_RETRIES = 1
    monkeypatch.setenv("DEAD_KEY", "k")
    router_reload()

    workflow = Workflow.objects.get(pk=start(client_as("agent_manager")).json()["id"])

    step = workflow.steps.get(position=0)
    assert workflow.status == "failed"
    assert step.attempts == 2
    assert "connection_error" in step.error


def test_cancel_stops_a_pending_workflow_and_a_finished_one_is_409(client_as, executives):
    client = client_as("agent_manager")
    workflow_id = start(client).json()["id"]

    cancelled = client.post(f"{URL}/{workflow_id}/cancel")
    again = client.post(f"{URL}/{workflow_id}/cancel")

    assert cancelled.json()["status"] == "cancelled"
    assert again.status_code == 409
    assert run_workflow_step(workflow_id, 0) == "finished"  # a late task does nothing
    assert WorkflowStep.objects.filter(workflow_id=workflow_id, status="cancelled").count() == 3


def test_a_finished_step_is_never_run_again(client_as, executives, eager):
    workflow_id = start(client_as("agent_manager")).json()["id"]
    before = list(
        WorkflowStep.objects.filter(workflow_id=workflow_id).values_list("output", "attempts")
    )

    Workflow.objects.filter(pk=workflow_id).update(status="running")  # as if redelivered mid-way
    run_workflow_step(workflow_id, 0)

    after = list(
        WorkflowStep.objects.filter(workflow_id=workflow_id).values_list("output", "attempts")
    )
    assert after == before


def test_a_step_left_running_by_a_dead_worker_is_run_again_and_completes_once(
    client_as, executives, eager
):
    """Its claim lapsed: the task's hard time limit passed, so no worker is on it."""
    workflow_id = start(client_as("agent_manager")).json()["id"]
    WorkflowStep.objects.filter(workflow_id=workflow_id, position=2).update(
        status="running", output="", started_at=timezone.now() - timedelta(hours=1)
    )
    Workflow.objects.filter(pk=workflow_id).update(status="running", progress=67)

    run_workflow_step(workflow_id, 2)

    workflow = Workflow.objects.get(pk=workflow_id)
    last = workflow.steps.get(position=2)
    assert (workflow.status, workflow.progress) == ("completed", 100)
    assert last.status == "completed"
    assert last.output
    assert last.attempts == 2


def test_unknown_workflow_is_404(client_as):
    client = client_as("agent_manager")

    for ref in (str(uuid.uuid4()), "workflow-1"):
        response = client.get(f"{URL}/{ref}")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "workflow_not_found"


def test_messaging_role_cannot_start_workflows(client_as):
    assert start(client_as("messaging")).status_code == 403

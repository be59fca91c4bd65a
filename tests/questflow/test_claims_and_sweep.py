"""Redelivered tasks do no paid work twice (each claims its work first), and the beat sweep
fails runs past their time limit and re-queues work whose task was lost."""

from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import UsageRecord
from agents.services import agent_create, agent_start
from config.celery import app as celery_app
from questflow.models import Deployment, Meeting, Workflow, WorkflowStep
from questflow.services import sweep as sweep_module
from questflow.services.workflows import StepOutcome
from questflow.services.workflows import _complete_step as complete_step
from questflow.tasks import run_meeting, run_workflow_step, submit_deployment, sweep
from system.models import EventLogEntry
from tests.questflow.test_meetings_and_deployments import DEPLOY, fake_cli

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.embedded]

LONG_AGO = timedelta(hours=2)


@pytest.fixture
def executives():
    return {
        t: agent_start(agent=agent_create(name=t, type=t))
        for t in ("ceo_mimi", "cto_alex", "cpo_agent", "cmo_anova", "cfo_cash")
    }


@pytest.fixture
def eager():
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def pending_workflow(client) -> str:
    """A workflow whose first step is queued on the broker, not run (Celery not eager)."""
    eager, celery_app.conf.task_always_eager = celery_app.conf.task_always_eager, False
    response = client.post(
        "/api/workflows", {"template": "Plugin Development", "input": {}}, format="json"
    )
    celery_app.conf.task_always_eager = eager
    return response.json()["id"]


def counting_cli(tmp_path, exit_code: int) -> tuple[str, object]:
    """The fake Akash CLI, wrapped to append a line to a file on every invocation."""
    invocations = tmp_path / "invocations"
    inner = fake_cli(tmp_path, exit_code).split()[0]
    wrapper = tmp_path / "akash-counting"
    wrapper.write_text(f'#!/bin/sh\necho run >> {invocations}\nexec {inner} "$@"\n')
    wrapper.chmod(0o755)
    return f"{wrapper} tx deployment create {{sdl}}", invocations


def test_a_redelivered_deployment_submission_runs_the_cli_once(client_as, settings, tmp_path):
    settings.AKASH_BACKEND = "cli"
    settings.AKASH_CLI_COMMAND, invocations = counting_cli(tmp_path, 3)
    deployment_id = (
        client_as("admin").post("/api/deploy/akash", DEPLOY, format="json").json()["deploymentId"]
    )

    first = submit_deployment(deployment_id)
    redelivered = submit_deployment(deployment_id)

    assert (first, redelivered) == ("failed", "failed")
    assert invocations.read_text().splitlines() == ["run"]


def test_a_submission_claimed_by_another_worker_is_left_to_it(client_as, settings, tmp_path):
    settings.AKASH_BACKEND = "cli"
    settings.AKASH_CLI_COMMAND, invocations = counting_cli(tmp_path, 0)
    deployment_id = (
        client_as("admin").post("/api/deploy/akash", DEPLOY, format="json").json()["deploymentId"]
    )
    Deployment.objects.filter(pk=deployment_id).update(status="submitting")

    assert submit_deployment(deployment_id) == "submitting"
    assert not invocations.exists()


def test_a_redelivered_workflow_step_does_nothing_while_its_claim_holds(
    client_as, executives, eager
):
    workflow_id = pending_workflow(client_as("agent_manager"))
    WorkflowStep.objects.filter(workflow_id=workflow_id, position=0).update(
        status="running", started_at=timezone.now()
    )  # the first copy of the task is in its provider call

    assert run_workflow_step(workflow_id, 0) == "finished"

    assert not UsageRecord.objects.exists()
    assert list(
        WorkflowStep.objects.filter(workflow_id=workflow_id).values_list("status", flat=True)
    ) == ["running", "pending", "pending"]


def test_the_copy_losing_the_race_to_complete_a_step_does_not_go_on(client_as, executives):
    """The original copy claimed step 0 and stalled past its lease; the redelivered copy
    re-claimed and completed it. When the original's provider call returns, it finds the
    step no longer its own: it keeps nothing and returns no next step, so steps 1 and 2 run
    once, from the redelivered copy."""
    workflow_id = pending_workflow(client_as("agent_manager"))
    original_claim = timezone.now() - LONG_AGO
    WorkflowStep.objects.filter(workflow_id=workflow_id, position=0).update(
        status="running", started_at=original_claim
    )
    assert run_workflow_step(workflow_id, 0) == "step 0 done"  # redelivered: step 1 queued
    workflow = Workflow.objects.get(pk=workflow_id)
    step = workflow.steps.get(position=0)

    outcome = complete_step(workflow, step, executives["cto_alex"], "late", original_claim)

    assert outcome == StepOutcome(next_position=None, retry=False)
    assert workflow.steps.get(position=0).output != "late"
    assert UsageRecord.objects.count() == 1


def test_a_redelivered_meeting_task_does_nothing_once_claimed(client_as, executives, eager):
    meeting_id = (
        client_as("agent_manager")
        .post("/api/agents/csuite/meeting?async=true", {}, format="json")
        .json()["meetingId"]
    )  # eager: it ran at once
    meeting = Meeting.objects.get(pk=meeting_id)
    calls = UsageRecord.objects.count()
    Meeting.objects.filter(pk=meeting_id).update(status="running")  # as if still speaking

    run_meeting(meeting_id, [p["agent_id"] for p in meeting.participants])

    assert UsageRecord.objects.count() == calls
    assert Meeting.objects.get(pk=meeting_id).transcript == meeting.transcript


def test_a_workflow_past_its_time_limit_is_failed_with_a_reason_by_the_sweep(
    client_as, executives, eager
):
    workflow_id = pending_workflow(client_as("agent_manager"))
    Workflow.objects.filter(pk=workflow_id).update(
        status="running", started_at=timezone.now() - LONG_AGO
    )
    WorkflowStep.objects.filter(workflow_id=workflow_id, position=0).update(
        status="running", started_at=timezone.now() - timedelta(seconds=5)
    )

    sweep()

    workflow = Workflow.objects.get(pk=workflow_id)
    assert workflow.status == "failed"
    assert "Timed out" in workflow.error
    assert workflow.steps.get(position=0).status == "failed"
    last = EventLogEntry.objects.filter(event_type="workflow_update", payload__id=workflow_id)
    assert last.order_by("event_id").last().payload["status"] == "failed"
    assert not UsageRecord.objects.exists()


def test_a_meeting_past_its_time_limit_is_failed_with_a_reason_by_the_sweep(client_as, executives):
    meeting_id = (
        client_as("agent_manager")
        .post("/api/agents/csuite/meeting?async=true", {}, format="json")
        .json()["meetingId"]
    )  # not eager: queued on the broker
    Meeting.objects.filter(pk=meeting_id).update(
        claimed_at=timezone.now() - LONG_AGO, started_at=timezone.now() - LONG_AGO
    )  # its worker died mid-meeting

    sweep()

    meeting = Meeting.objects.get(pk=meeting_id)
    assert meeting.status == "failed"
    assert "Timed out" in meeting.error
    event = EventLogEntry.objects.filter(event_type="workflow_update", payload__id=meeting_id)
    assert event.get().payload["status"] == "failed"


def test_a_pending_workflow_whose_task_was_lost_is_requeued_by_the_sweep(
    client_as, executives, eager
):
    workflow_id = pending_workflow(client_as("agent_manager"))
    Workflow.objects.filter(pk=workflow_id).update(created_at=timezone.now() - LONG_AGO)

    assert sweep() == "requeued 1, failed 0"

    assert Workflow.objects.get(pk=workflow_id).status == "completed"
    assert UsageRecord.objects.count() == 3


def test_busy_workflows_do_not_keep_a_lost_one_out_of_the_sweeps_batch(
    client_as, executives, eager, monkeypatch
):
    monkeypatch.setattr(sweep_module, "BATCH", 1)
    busy = pending_workflow(client_as("agent_manager"))
    Workflow.objects.filter(pk=busy).update(created_at=timezone.now() - 2 * LONG_AGO)
    WorkflowStep.objects.filter(workflow_id=busy, position=0).update(
        status="running", started_at=timezone.now()
    )
    lost = pending_workflow(client_as("agent_manager"))
    Workflow.objects.filter(pk=lost).update(created_at=timezone.now() - LONG_AGO)

    assert sweep() == "requeued 1, failed 0"

    assert Workflow.objects.get(pk=lost).status == "completed"


def test_a_recent_pending_workflow_is_left_to_its_task(client_as, executives, eager):
    workflow_id = pending_workflow(client_as("agent_manager"))

    assert sweep() == "requeued 0, failed 0"

    assert Workflow.objects.get(pk=workflow_id).status == "pending"


def test_a_lost_deployment_task_is_requeued_and_a_lost_submission_failed(client_as, eager):
    admin = client_as("admin")
    celery_app.conf.task_always_eager = False
    lost_task, lost_worker = (
        admin.post("/api/deploy/akash", DEPLOY, format="json").json()["deploymentId"]
        for _ in range(2)
    )
    celery_app.conf.task_always_eager = True
    Deployment.objects.filter(pk=lost_task).update(updated_at=timezone.now() - LONG_AGO)
    Deployment.objects.filter(pk=lost_worker).update(
        status="submitting", updated_at=timezone.now() - LONG_AGO
    )

    assert sweep() == "requeued 1, failed 1"

    assert Deployment.objects.get(pk=lost_task).status == "manifest_ready"
    failed = Deployment.objects.get(pk=lost_worker)
    assert failed.status == "failed"
    assert "lost" in failed.backend_output

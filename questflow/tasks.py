"""QuestFlow's Celery tasks: thin, idempotent, passing ids (see questflow.services)."""

from celery import shared_task
from django.conf import settings

from agents.models import Agent
from questflow.models import Meeting
from questflow.services import deployment_submit, meeting_run, questflow_sweep, workflow_run_step


@shared_task(bind=True, name="questflow.run_workflow_step", max_retries=None)
def run_workflow_step(self, workflow_id: str, position: int) -> str:
    """One step per task; the next step is a new task, so a lost worker costs one step."""
    final = self.request.retries >= settings.WORKFLOW_STEP_RETRIES
    outcome = workflow_run_step(workflow_id=workflow_id, position=position, final_attempt=final)
    if outcome.retry:
        raise self.retry(countdown=2**self.request.retries)
    if outcome.next_position is not None:
        run_workflow_step.delay(workflow_id, outcome.next_position)
        return f"step {position} done"
    return "finished"


@shared_task(name="questflow.run_meeting")
def run_meeting(meeting_id: str, agent_ids: list[str]) -> str:
    meeting = Meeting.objects.filter(pk=meeting_id, status=Meeting.Status.RUNNING).first()
    if meeting is None:
        return "gone or already run"
    agents = {str(a.agent_id): a for a in Agent.objects.filter(agent_id__in=agent_ids)}
    return meeting_run(meeting=meeting, agents=[agents[i] for i in agent_ids if i in agents]).status


@shared_task(name="questflow.submit_deployment")
def submit_deployment(deployment_id: str) -> str:
    deployment = deployment_submit(deployment_id=deployment_id)
    return deployment.status if deployment else "gone"


@shared_task(name="questflow.sweep")
def sweep() -> str:
    """On beat: re-queue lost QuestFlow work and fail runs past their time limit."""
    report = questflow_sweep()
    return f"requeued {report.requeued}, failed {report.failed}"

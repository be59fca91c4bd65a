"""QuestFlow's services: workflows over agents, C-suite meetings, Akash deployments.

Everything that changes QuestFlow's state, one module per kind of run; the names below are
what the views, the admin and the tasks call.
"""

from questflow.services.deployments import (
    DeploymentNotFailed,
    deployment_create,
    deployment_resubmit,
    deployment_submit,
)
from questflow.services.meetings import (
    ParticipantsNotRunning,
    meeting_duration,
    meeting_prepare,
    meeting_run,
)
from questflow.services.sweep import SweepReport, questflow_sweep
from questflow.services.workflows import (
    WorkflowNotActive,
    WorkflowNotFound,
    workflow_cancel,
    workflow_create,
    workflow_run_step,
)

__all__ = [
    "DeploymentNotFailed",
    "ParticipantsNotRunning",
    "SweepReport",
    "WorkflowNotActive",
    "WorkflowNotFound",
    "deployment_create",
    "deployment_resubmit",
    "deployment_submit",
    "meeting_duration",
    "meeting_prepare",
    "meeting_run",
    "questflow_sweep",
    "workflow_cancel",
    "workflow_create",
    "workflow_run_step",
]

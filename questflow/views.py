"""QuestFlow API Server routes (the spec's paths and camelCase shapes).

Workflows and meetings are their creator's (a standalone key's are the key's): other callers
get 404, admins see all, as their owner-scoped events do (system.kernel.access.visible_to).
The active-workflow status list is the monitors' overview and lists every creator's.
Deployments are admin-only by policy.
"""

import uuid
from typing import Any, TypeVar

from django.db import models
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from questflow import services
from questflow.models import Deployment, Meeting, Workflow
from questflow.request_schemas import (
    DEPLOY_CONFIG_KEYS,
    DEPLOY_SCHEMA,
    MEETING_SCHEMA,
    workflow_create_schema,
)
from questflow.templates import workflow_templates
from system.kernel.access import get_visible_or_404, visible_to
from system.kernel.exceptions import NotFound, ValidationFailed
from system.kernel.pagination import PagePagination
from system.kernel.principal import principal_from_request
from system.kernel.schema_fields import storable_json
from system.kernel.timefmt import iso_z, iso_z_or_none

ModelT = TypeVar("ModelT", bound=models.Model)
_JSON = "application/json"
_TRUE, _FALSE = ("1", "true", "yes"), ("", "0", "false", "no")


def _body_object(request: Request, *, stored: tuple[str, ...] = ()) -> dict[str, Any]:
    """The request's JSON object (no body: {}); else a 400. Text holding a NUL character in
    the `stored` fields, which PostgreSQL cannot store, is refused too."""
    body = request.data
    if not isinstance(body, dict):
        raise ValidationFailed("The request body must be a JSON object.")
    for field in stored:
        value = body.get(field)
        if field == "steps" and isinstance(value, list):  # a step's other keys are not kept
            value = [[s.get("agent"), s.get("instruction")] for s in value if isinstance(s, dict)]
        if _holds_nul(value):
            raise ValidationFailed(details={field: ["Text may not contain NUL characters."]})
    return body


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


def _found(model: type[ModelT], pk: str, not_found: NotFound) -> ModelT:
    """The row of `model` with primary key `pk`; else `not_found` is raised."""
    row = model.objects.filter(pk=pk).first()
    if row is None:
        raise not_found
    return row


def _workflow_body(workflow: Workflow) -> dict[str, Any]:
    return {
        "id": str(workflow.workflow_id),
        "name": workflow.name,
        "template": workflow.template or None,
        "status": workflow.status,
        "progress": workflow.progress,
        "input": workflow.input,
        "result": workflow.result,
        "error": workflow.error or None,
        "createdAt": iso_z(workflow.created_at),
        "startTime": iso_z_or_none(workflow.started_at),
        "endTime": iso_z_or_none(workflow.finished_at),
        "steps": [
            {
                "position": s.position,
                "agent": s.agent_ref,
                "agentId": str(s.agent_id) if s.agent_id else None,
                "instruction": s.instruction,
                "status": s.status,
                "output": s.output,
                "error": s.error or None,
                "startedAt": iso_z_or_none(s.started_at),
                "finishedAt": iso_z_or_none(s.finished_at),
            }
            for s in workflow.steps.all()
        ],
    }


def _workflow(request: Request, workflow_id: str) -> Workflow:
    """The caller's workflow (any, for an admin); 404 for another's, as for none."""
    try:
        pk = uuid.UUID(workflow_id)
    except ValueError:
        raise services.WorkflowNotFound() from None
    visible = visible_to(
        Workflow.objects.all(), principal=principal_from_request(request), owner_field="created_by"
    )
    workflow = visible.prefetch_related("steps").filter(pk=pk).first()
    if workflow is None:
        raise services.WorkflowNotFound()
    return workflow


class WorkflowCreateView(APIView):
    policy_action = "workflows.create"

    @extend_schema(request={_JSON: workflow_create_schema()}, responses={202: dict})
    def post(self, request: Request) -> Response:
        body = _body_object(request, stored=("template", "steps", "name"))
        workflow = services.workflow_create(
            template=body.get("template"),
            steps=body.get("steps"),
            name=body.get("name"),
            input=storable_json(body.get("input")),
            actor=request.user,
        )
        return Response(_workflow_body(workflow), status=202)


class WorkflowTemplateListView(APIView):
    """The templates `POST /api/workflows` accepts by key or name, each with its steps."""

    policy_action = "workflows.templates.read"

    @extend_schema(responses={200: dict})
    def get(self, request: Request) -> Response:
        return Response(
            {
                "templates": [
                    {
                        "key": t.key,
                        "name": t.name,
                        "description": t.description,
                        "steps": [
                            {"position": i, "agent": s.agent, "instruction": s.instruction}
                            for i, s in enumerate(t.steps)
                        ],
                    }
                    for t in workflow_templates().values()
                ]
            }
        )


class WorkflowStatusView(APIView):
    """The spec's list of active workflows: [{id, name, status, progress, startTime}]."""

    policy_action = "workflows.status.read"

    @extend_schema(
        responses={
            200: inline_serializer(
                "ActiveWorkflow",
                {
                    "id": serializers.UUIDField(),
                    "name": serializers.CharField(),
                    "status": serializers.CharField(),
                    "progress": serializers.IntegerField(),
                    "startTime": serializers.DateTimeField(),
                },
                many=True,
            )
        }
    )
    def get(self, request: Request) -> Response:
        active = Workflow.objects.filter(status__in=Workflow.ACTIVE).order_by("created_at")[:500]
        return Response(
            [
                {
                    "id": str(w.workflow_id),
                    "name": w.name,
                    "status": w.status,
                    "progress": w.progress,
                    "startTime": iso_z(w.started_at or w.created_at),
                }
                for w in active
            ]
        )


class WorkflowDetailView(APIView):
    policy_action = "workflows.read"

    @extend_schema(responses={200: dict})
    def get(self, request: Request, workflow_id: str) -> Response:
        return Response(_workflow_body(_workflow(request, workflow_id)))


class WorkflowCancelView(APIView):
    policy_action = "workflows.cancel"

    @extend_schema(request=None, responses={200: dict})
    def post(self, request: Request, workflow_id: str) -> Response:
        workflow = services.workflow_cancel(workflow=_workflow(request, workflow_id))
        return Response(_workflow_body(_workflow(request, str(workflow.pk))))


class MeetingNotFound(NotFound):
    code = "meeting_not_found"
    message = "Meeting not found."


def _meeting_body(meeting: Meeting) -> dict[str, Any]:
    return {
        "meetingId": meeting.meeting_id,
        "participants": [p["title"] for p in meeting.participants],
        "agenda": meeting.agenda,
        "outcomes": meeting.outcomes,
        "duration": services.meeting_duration(meeting),
        "status": meeting.status,
        "timestamp": iso_z(meeting.finished_at or meeting.started_at),
    }


class MeetingView(APIView):
    policy_action = "csuite.meetings.create"

    @extend_schema(
        request={_JSON: MEETING_SCHEMA},
        responses={200: dict, 202: dict},
        parameters=[OpenApiParameter("async", bool, description="run on the worker; 202 at once")],
    )
    def post(self, request: Request) -> Response:
        body = _body_object(request, stored=("participants", "agenda", "topic"))
        flag = request.query_params.get("async", "").lower()
        if flag not in _TRUE + _FALSE:
            raise ValidationFailed(details={"async": ["true or false."]})
        queue = flag in _TRUE
        meeting, agents = services.meeting_prepare(
            participants=body.get("participants"),
            agenda=body.get("agenda"),
            topic=body.get("topic"),
            actor=request.user,
            queue=queue,
        )
        if queue:
            return Response(
                {"meetingId": meeting.meeting_id, "status": "running"},
                status=202,
                headers={"Location": f"/api/agents/csuite/meetings/{meeting.meeting_id}"},
            )
        meeting = services.meeting_run(meeting=meeting, agents=agents)
        return Response(_meeting_body(meeting))


class MeetingDetailView(APIView):
    policy_action = "csuite.meetings.read"

    @extend_schema(responses={200: dict})
    def get(self, request: Request, meeting_id: str) -> Response:
        meeting = get_visible_or_404(
            Meeting.objects.all(),
            principal=principal_from_request(request),
            owner_field="created_by",
            not_found=MeetingNotFound,
            pk=meeting_id,
        )
        return Response(
            {
                **_meeting_body(meeting),
                "topic": meeting.topic,
                "transcript": meeting.transcript,
                "participantsDetail": meeting.participants,
                "error": meeting.error or None,
            }
        )


def _deployment_body(deployment: Deployment) -> dict[str, Any]:
    return {
        "deploymentId": deployment.deployment_id,
        "name": deployment.name,
        "status": deployment.status,
        "backend": deployment.backend,
        "config": deployment.config,
        "sdl": deployment.sdl,
        "backendOutput": deployment.backend_output,
        "createdAt": iso_z(deployment.created_at),
        "updatedAt": iso_z(deployment.updated_at),
    }


class DeploymentListCreateView(APIView):
    policy_actions = {"post": "deployments.create", "get": "deployments.read"}

    @extend_schema(request={_JSON: DEPLOY_SCHEMA}, responses={200: dict})
    def post(self, request: Request) -> Response:
        try:
            body = _body_object(request)
            config = body.get("config")
            unknown = (
                sorted(set(config) - set(DEPLOY_CONFIG_KEYS)) if isinstance(config, dict) else []
            )
            if unknown:
                raise ValidationFailed(
                    "The deployment configuration is invalid.",
                    details={f"config.{key}": ["Unknown setting."] for key in unknown},
                )
            deployment = services.deployment_create(body=body, actor=request.user)
        except ValidationFailed as exc:
            return Response(
                {
                    "success": False,
                    "message": exc.message,
                    "error": {"code": exc.code, "details": exc.details},
                },
                status=400,
            )
        return Response(
            {
                "success": True,
                "deploymentId": deployment.deployment_id,
                "status": "initiated",
                "message": "Deployment to Akash initiated successfully",
                "config": {"name": deployment.name, "config": deployment.config},
            }
        )

    @extend_schema(responses={200: dict}, operation_id="deploy_akash_list")
    def get(self, request: Request) -> Response:
        pagination = PagePagination(request, items_key="deployments")
        rows = pagination.slice(Deployment.objects.all())
        return pagination.response([_deployment_body(d) for d in rows])


class DeploymentDetailView(APIView):
    policy_action = "deployments.read"

    @extend_schema(responses={200: dict})
    def get(self, request: Request, deployment_id: str) -> Response:
        not_found = NotFound("Deployment not found.", code="deployment_not_found")
        return Response(_deployment_body(_found(Deployment, deployment_id, not_found)))

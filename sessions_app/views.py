"""The spec's Session Management API: /api/v1/sessions."""

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from agents.selectors import agent_get
from sessions_app import selectors, services, timeouts
from sessions_app.exchange import session_message
from sessions_app.models import Session
from sessions_app.representations import v1_created, v1_session
from system.kernel.exceptions import ValidationFailed
from system.kernel.pagination import PagePagination
from system.kernel.principal import principal_from_request
from system.kernel.timefmt import iso_z
from system.kernel.validation import validated


class SessionCreateInputSerializer(serializers.Serializer):
    agent_id = serializers.CharField(max_length=100)
    user_id = serializers.CharField(max_length=255, trim_whitespace=False)
    context = serializers.DictField(required=False)
    metadata = serializers.DictField(required=False)
    timeoutConfig = serializers.JSONField(required=False)  # noqa: N815 - the spec's name


class SessionMessageInputSerializer(serializers.Serializer):
    content = serializers.JSONField(allow_null=True)


class SessionMessageOutputSerializer(serializers.Serializer):
    response = serializers.CharField()
    context_update = serializers.DictField()
    timestamp = serializers.DateTimeField()


class SessionEndOutputSerializer(serializers.Serializer):
    session_id = serializers.UUIDField()
    ended_at = serializers.DateTimeField()
    status = serializers.CharField()
    summary = serializers.CharField()


# Both session APIs (this one and ElizaOS's, in eliza_views) address a session by its id and
# authorise the actions they share under the same policy names.
class SessionRoutesMixin:
    lookup_field = "session_id"
    lookup_value_regex = "[^/]+"
    policy_actions: dict[str, str] = {
        "list": "sessions.list",
        "create": "sessions.create",
        "retrieve": "sessions.read",
        "heartbeat": "sessions.heartbeat",
        "renew": "sessions.renew",
        "timeout": "sessions.update",
    }


def _with_agent_uuid(body: dict[str, Any], session: Session) -> dict[str, Any]:
    return {**body, "agent_uuid": str(session.agent_uuid)}


def _session_body(session: Session) -> dict[str, Any]:
    body = v1_session(session, message_count=selectors.session_message_count(session=session))
    return _with_agent_uuid(body, session)


class SessionViewSet(SessionRoutesMixin, viewsets.ViewSet):
    """Agent-user sessions with timeouts, heartbeat, renewal and expiry."""

    policy_actions = {
        **SessionRoutesMixin.policy_actions,
        "message": "sessions.message",
        "end": "sessions.end",
    }

    def _get(self, request: Request, session_id: str) -> Session:
        """Owner's (or admin's) session; expired or due → 410 (lazy expiry). Ended sessions
        stay readable; the services refuse to change them (409)."""
        session = selectors.session_get_visible(
            principal=principal_from_request(request), session_id=session_id
        )
        if session.status != Session.Status.ENDED:
            services.session_ensure_live(session)
        return session

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=[s.value for s in Session.Status]),
            OpenApiParameter("agent_id", str),
            OpenApiParameter("user_id", str),
            OpenApiParameter("page", int),
            OpenApiParameter("limit", int),
        ],
        responses={200: dict},
        operation_id="v1_sessions_list",
    )
    def list(self, request: Request) -> Response:
        pagination = PagePagination(request, items_key="sessions")
        sessions = selectors.sessions_visible(principal=principal_from_request(request))
        status = request.query_params.get("status")
        if status:
            if status not in Session.Status.values:
                raise ValidationFailed(details={"status": [f"One of {Session.Status.values}."]})
            sessions = sessions.filter(status=status)
        if request.query_params.get("agent_id"):
            sessions = sessions.filter(
                agent_uuid=agent_get(ref=request.query_params["agent_id"]).agent_id
            )
        if request.query_params.get("user_id"):
            sessions = sessions.filter(user_id=request.query_params["user_id"])
        rows = pagination.slice(
            selectors.with_message_counts(sessions.order_by("-created_at", "session_id")),
            count=sessions,
        )
        return pagination.response(
            [_with_agent_uuid(v1_session(s, message_count=s.message_total), s) for s in rows]
        )

    @extend_schema(request=SessionCreateInputSerializer, responses={201: dict})
    def create(self, request: Request) -> Response:
        data = validated(SessionCreateInputSerializer, request.data)
        if not data["user_id"].strip():
            raise ValidationFailed(details={"user_id": ["1 to 255 characters."]})
        config = timeouts.validate(data.get("timeoutConfig"), base=timeouts.defaults())
        session = services.session_create(
            agent=agent_get(ref=data["agent_id"]),
            user_id=data["user_id"],
            owner=request.user,
            actor=principal_from_request(request),
            config=config,
            context=data.get("context"),
            metadata=data.get("metadata"),
        )
        # The caller's `agent_id` comes back as sent (a name like the spec's `ceo-mimi-001`).
        body = {**_with_agent_uuid(v1_created(session), session), "agent_id": data["agent_id"]}
        return Response(body, status=201)

    @extend_schema(responses={200: dict})
    def retrieve(self, request: Request, session_id: str) -> Response:
        """Any state is readable (the spec's status enum: active, ended, expired); a due
        session is expired first. Only the actions answer 410 for an expired one."""
        session = selectors.session_get_visible(
            principal=principal_from_request(request), session_id=session_id
        )
        return Response(_session_body(services.session_expire_if_due(session)))

    @extend_schema(
        request=SessionMessageInputSerializer, responses={200: SessionMessageOutputSerializer}
    )
    @action(detail=True, methods=["post"])
    def message(self, request: Request, session_id: str) -> Response:
        data = validated(SessionMessageInputSerializer, request.data)
        exchange = session_message(session=self._get(request, session_id), content=data["content"])
        return Response(
            {
                "response": exchange.reply.content if exchange.reply else "",
                "context_update": exchange.context_update,
                "timestamp": iso_z(timezone.now()),
            }
        )

    @extend_schema(request=None, responses={200: SessionEndOutputSerializer})
    @action(detail=True, methods=["post"])
    def end(self, request: Request, session_id: str) -> Response:
        session = services.session_end(session=self._get(request, session_id))
        return Response(
            {
                "session_id": str(session.session_id),
                "ended_at": iso_z(session.ended_at),
                "status": session.status,
                "summary": session.summary,
            }
        )

    @extend_schema(request=None, responses={200: dict})
    @action(detail=True, methods=["post"])
    def heartbeat(self, request: Request, session_id: str) -> Response:
        session = services.session_heartbeat(session=self._get(request, session_id))
        return Response(_session_body(session))

    @extend_schema(request=None, responses={200: dict})
    @action(detail=True, methods=["post"])
    def renew(self, request: Request, session_id: str) -> Response:
        session = services.session_renew(session=self._get(request, session_id))
        return Response(_session_body(session))

    @extend_schema(request=dict, responses={200: dict})
    @action(detail=True, methods=["patch"])
    def timeout(self, request: Request, session_id: str) -> Response:
        session = self._get(request, session_id)
        config = timeouts.validate(request.data, base=services.session_config(session))
        session = services.session_update_timeout(session=session, config=config)
        return Response(_session_body(session))

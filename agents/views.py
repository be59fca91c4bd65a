from datetime import UTC, datetime

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from agents import selectors, services
from agents.filters import AgentFilter
from agents.models import Agent
from agents.roster import AGENT_TYPES
from agents.serializers import (
    AgentCreatedSerializer,
    AgentCreateInputSerializer,
    AgentDetailSerializer,
    AgentListSerializer,
    AgentStartedSerializer,
    AgentStoppedSerializer,
    AgentSummarySerializer,
    AgentUpdateInputSerializer,
)
from system.kernel.caching import cached_read
from system.kernel.deprecation import Deprecation, DeprecationMixin
from system.kernel.exceptions import ValidationFailed
from system.kernel.pagination import PAGE_PARAMETERS, PagePagination
from system.kernel.validation import validated

# The spec announces both as deprecated, to be removed in v2.
_DEPRECATED = Deprecation(deprecated_at=datetime(2026, 11, 1, tzinfo=UTC))

_LIST_PARAMETERS = [
    OpenApiParameter("status", str, enum=[s.value for s in Agent.Status]),
    OpenApiParameter("type", str, enum=list(AGENT_TYPES)),
    *PAGE_PARAMETERS,
]


def _list_resources(view, request: Request) -> list[str]:
    return ["agents"]


def _detail_resources(view, request: Request, agent_id: str) -> list[str]:
    return [f"agent:{agent_id}"]


class AgentViewSet(DeprecationMixin, viewsets.ViewSet):
    """Agents: create, list, read, change, delete, start, stop."""

    lookup_field = "agent_id"
    lookup_value_regex = "[^/]+"
    policy_actions = {
        "list": "agents.list",
        "create": "agents.create",
        "retrieve": "agents.read",
        "partial_update": "agents.update",
        "destroy": "agents.delete",
        "start": "agents.start",
        "stop": "agents.stop",
        "restart": "agents.restart",
        "active": "agents.active",
    }
    deprecations = {"restart": _DEPRECATED, "active": _DEPRECATED}

    def _page(self, request: Request, queryset) -> Response:
        pagination = PagePagination(request, items_key="agents")
        rows = pagination.slice(
            queryset.only("agent_id", "name", "type", "status", "created_at", "last_active")
        )
        return pagination.response(AgentSummarySerializer(rows, many=True).data)

    # One page object, not a list of them (drf-spectacular wraps a `list` action's answer).
    @extend_schema(
        parameters=_LIST_PARAMETERS,
        responses={200: extend_schema_serializer(many=False)(AgentListSerializer)},
    )
    @cached_read(max_age=30, resources=_list_resources)
    def list(self, request: Request) -> Response:
        filterset = AgentFilter(request.query_params, queryset=Agent.objects.all())
        if not filterset.is_valid():
            raise ValidationFailed("Invalid filter.", details=filterset.errors)
        return self._page(request, filterset.qs)

    @extend_schema(request=AgentCreateInputSerializer, responses={201: AgentCreatedSerializer})
    def create(self, request: Request) -> Response:
        data = validated(AgentCreateInputSerializer, request.data)
        agent = services.agent_create(**data, actor=request.user)
        return Response(AgentCreatedSerializer(agent).data, status=201)

    def _detail(self, agent: Agent) -> Response:
        metrics = selectors.agent_performance_metrics(agent=agent)
        return Response(AgentDetailSerializer(agent, context={"performance_metrics": metrics}).data)

    @extend_schema(responses={200: AgentDetailSerializer})
    @cached_read(max_age=15, resources=_detail_resources)
    def retrieve(self, request: Request, agent_id: str) -> Response:
        return self._detail(selectors.agent_get(ref=agent_id))

    @extend_schema(request=AgentUpdateInputSerializer, responses={200: AgentDetailSerializer})
    def partial_update(self, request: Request, agent_id: str) -> Response:
        data = validated(AgentUpdateInputSerializer, request.data)
        agent = services.agent_update(agent=selectors.agent_get(ref=agent_id), data=data)
        return self._detail(agent)

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, agent_id: str) -> Response:
        services.agent_delete(agent=selectors.agent_get(ref=agent_id))
        return Response(status=204)

    @extend_schema(request=None, responses={200: AgentStartedSerializer})
    @action(detail=True, methods=["post"])
    def start(self, request: Request, agent_id: str) -> Response:
        agent = services.agent_start(agent=selectors.agent_get(ref=agent_id))
        return Response(AgentStartedSerializer(agent).data)

    @extend_schema(request=None, responses={200: AgentStoppedSerializer})
    @action(detail=True, methods=["post"])
    def stop(self, request: Request, agent_id: str) -> Response:
        agent = services.agent_stop(agent=selectors.agent_get(ref=agent_id))
        return Response(AgentStoppedSerializer(agent).data)

    @extend_schema(request=None, responses={200: AgentStartedSerializer}, deprecated=True)
    @action(detail=True, methods=["post"])
    def restart(self, request: Request, agent_id: str) -> Response:
        """Deprecated: use stop, then start."""
        agent = services.agent_restart(agent=selectors.agent_get(ref=agent_id))
        return Response(AgentStartedSerializer(agent).data)

    @extend_schema(
        parameters=PAGE_PARAMETERS, responses={200: AgentListSerializer}, deprecated=True
    )
    @action(detail=False, methods=["get"])
    @cached_read(max_age=30, resources=_list_resources)
    def active(self, request: Request) -> Response:
        """Deprecated: use the list with `status=running`."""
        return self._page(request, Agent.objects.filter(status=Agent.Status.RUNNING))

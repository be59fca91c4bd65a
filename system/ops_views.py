"""System operations API: status, configuration, system tasks; and the Prometheus endpoint.

GET  /api/v1/system/status          every role (system.status.read); cached 10 s, ETag
GET  /api/v1/system/config          admin (system.config.read)
POST /api/v1/system/tasks           admin (system.tasks.run) → 202, run by the worker
GET  /api/v1/system/tasks[/<id>]    admin, system_monitor (system.tasks.read)
GET  /metrics                       Prometheus; off unless METRICS_ENABLED, bearer token
"""

import hmac
import threading
import time
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter, extend_schema
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.models import TokenUser

from system.authentication import ApiKeyAuthentication, BearerAuthentication, hash_secret, split_key
from system.caching import cached_read
from system.exceptions import ServiceUnavailable
from system.idempotency import idempotent
from system.metrics import metrics_registry
from system.models import ApiKey, SystemTask
from system.pagination import page_params
from system.status import status_bucket, status_current, status_etag_resource, system_config
from system.system_tasks import (
    TASK_TYPES,
    system_task_create,
    system_task_get,
    system_tasks_recent,
)
from system.validation import validated

# --- Serializers (the OpenAPI description of the bodies) ------------------------------------

_STATES = "operational | degraded | unavailable"


class StatusServicesSerializer(serializers.Serializer):
    api_gateway = serializers.CharField(help_text=_STATES)
    agent_orchestrator = serializers.CharField(help_text=_STATES)
    message_broker = serializers.CharField(help_text=_STATES)
    database = serializers.CharField(help_text=_STATES)
    cache = serializers.CharField(help_text=_STATES)


class StatusMetricsSerializer(serializers.Serializer):
    active_agents = serializers.IntegerField(allow_null=True, help_text="Agents running.")
    active_sessions = serializers.IntegerField(allow_null=True)
    requests_per_minute = serializers.FloatField(
        allow_null=True, help_text="Requests in the last full minute, all API processes."
    )
    error_rate = serializers.FloatField(
        allow_null=True, help_text="Share of those requests answered with a 5xx (0 to 1)."
    )
    system_load = serializers.FloatField(
        allow_null=True, help_text="1-minute load average divided by the CPU count."
    )


class SystemStatusSerializer(serializers.Serializer):
    status = serializers.CharField(help_text="healthy | degraded | unhealthy")
    timestamp = serializers.DateTimeField()
    services = StatusServicesSerializer()
    metrics = StatusMetricsSerializer()
    details = serializers.DictField(
        child=serializers.DictField(),
        help_text="Per service: latency_ms, and error when it is not operational.",
    )


class ProviderHealthSerializer(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.CharField()
    models = serializers.ListField(child=serializers.CharField())
    configured = serializers.BooleanField()
    healthy = serializers.BooleanField()
    consecutive_failures = serializers.IntegerField()


class DefaultAgentConfigSerializer(serializers.Serializer):
    model = serializers.CharField()
    temperature = serializers.FloatField()
    max_tokens = serializers.IntegerField()
    top_p = serializers.FloatField()
    frequency_penalty = serializers.FloatField()
    presence_penalty = serializers.FloatField()


class RateLimitsSerializer(serializers.Serializer):
    window_seconds = serializers.IntegerField()
    per_role = serializers.DictField(child=serializers.IntegerField())
    no_role = serializers.IntegerField()
    anonymous = serializers.IntegerField()
    per_action = serializers.DictField(child=serializers.IntegerField())


class SessionDefaultsSerializer(serializers.Serializer):
    timeout_minutes = serializers.IntegerField()
    min_timeout_minutes = serializers.IntegerField()
    max_timeout_minutes = serializers.IntegerField()
    max_duration_minutes = serializers.IntegerField()
    warning_threshold_minutes = serializers.IntegerField()


class SystemConfigSerializer(serializers.Serializer):
    version = serializers.CharField()
    environment = serializers.CharField()
    config_version = serializers.CharField(allow_null=True)
    llm_providers = ProviderHealthSerializer(many=True)
    default_agent_config = DefaultAgentConfigSerializer()
    rate_limits = RateLimitsSerializer()
    session_defaults = SessionDefaultsSerializer()


class SystemTaskCreateInputSerializer(serializers.Serializer):
    task_type = serializers.CharField(max_length=64, help_text=" | ".join(TASK_TYPES))
    parameters = serializers.DictField(
        required=False,
        default=dict,
        help_text='clear_cache: {"area": "all" | "cache" | "responses"}; others: {}.',
    )


class SystemTaskQueuedSerializer(serializers.ModelSerializer):
    # Plain strings: a choice field named "status" would collide with the other APIs' enums.
    status = serializers.CharField(help_text="queued")

    class Meta:
        model = SystemTask
        fields = ["task_id", "task_type", "status", "queued_at"]


class SystemTaskSerializer(serializers.ModelSerializer):
    requested_by = serializers.CharField(
        source="requested_by.get_username", read_only=True, allow_null=True, default=None
    )
    status = serializers.CharField(help_text="queued | running | succeeded | failed")
    result = serializers.JSONField(allow_null=True)

    class Meta:
        model = SystemTask
        fields = [
            "task_id",
            "task_type",
            "status",
            "parameters",
            "requested_by",
            "queued_at",
            "started_at",
            "finished_at",
            "result",
            "error",
        ]


class SystemTaskListSerializer(serializers.Serializer):
    tasks = SystemTaskSerializer(many=True)
    pagination = serializers.DictField()


# --- Authentication that survives a database outage (status only) ---------------------------

# Keys verified against the database in the last KEY_MEMO_SECONDS, by prefix.
KEY_MEMO_SECONDS = 600
_KEY_MEMO_SIZE = 1024
_key_memo: dict[str, tuple[float, str, dict[str, Any]]] = {}
_key_memo_lock = threading.Lock()


class AuthenticationUnavailable(ServiceUnavailable):
    code = "authentication_unavailable"
    message = (
        "The database is unreachable, so this API key cannot be verified. A JWT, or a key "
        "that checked the status in the last few minutes, still works."
    )


def _memo_store(api_key: ApiKey) -> None:
    record = {
        "pk": api_key.pk,
        "name": api_key.name,
        "roles": api_key.roles,
        "expires_at": api_key.expires_at,
        "owner_pk": api_key.owner.pk,
        "owner_username": api_key.owner.get_username(),
    }
    with _key_memo_lock:
        _key_memo.pop(api_key.prefix, None)
        if len(_key_memo) >= _KEY_MEMO_SIZE:
            _key_memo.pop(next(iter(_key_memo)))
        _key_memo[api_key.prefix] = (time.monotonic(), api_key.secret_hash, record)


def _memo_lookup(raw: str) -> tuple[Any, ApiKey] | None:
    parts = split_key(raw)
    if parts is None:
        return None
    prefix, secret = parts
    with _key_memo_lock:
        entry = _key_memo.get(prefix)
    if entry is None or time.monotonic() - entry[0] > KEY_MEMO_SECONDS:
        return None
    _, secret_hash, record = entry
    if not hmac.compare_digest(hash_secret(secret), secret_hash):
        return None
    api_key = ApiKey(
        pk=record["pk"],
        name=record["name"],
        prefix=prefix,
        roles=record["roles"],
        expires_at=record["expires_at"],
        owner_id=record["owner_pk"],
    )
    if not api_key.is_usable(timezone.now()):
        return None
    owner = get_user_model()(pk=record["owner_pk"], is_active=True)
    setattr(owner, owner.USERNAME_FIELD, record["owner_username"])
    api_key.owner = owner
    return owner, api_key


class OutageTolerantApiKeyAuthentication(ApiKeyAuthentication):
    """API keys as everywhere; while the database is unreachable, a key this process verified
    in the last KEY_MEMO_SECONDS is still accepted (revocations apply whenever the database
    answers, since the memo is consulted only when it does not)."""

    def _authenticate_key(self, raw: str):
        try:
            user, api_key = super()._authenticate_key(raw)
        except DatabaseError:
            remembered = _memo_lookup(raw)
            if remembered is None:
                raise AuthenticationUnavailable() from None
            return remembered
        _memo_store(api_key)
        return user, api_key


class OutageTolerantBearerAuthentication(BearerAuthentication):
    """JWTs as everywhere; while the database is unreachable the token's own claims (user id,
    roles) stand in for the user row."""

    def get_user(self, validated_token):
        try:
            return super().get_user(validated_token)
        except DatabaseError:
            return TokenUser(validated_token)


class _OutageTolerantApiKeyScheme(OpenApiAuthenticationExtension):
    """The same security scheme as every other view (system.schema defines the component):
    refer to it rather than define a second one."""

    target_class = OutageTolerantApiKeyAuthentication
    name: list[str] = []

    def get_security_requirement(self, auto_schema: Any) -> dict[str, list]:
        return {"ApiKeyAuth": []}

    def get_security_definition(self, auto_schema: Any) -> list:
        return []


class _OutageTolerantBearerScheme(_OutageTolerantApiKeyScheme):
    target_class = OutageTolerantBearerAuthentication

    def get_security_requirement(self, auto_schema: Any) -> dict[str, list]:
        return {"BearerAuth": []}


# --- Views -----------------------------------------------------------------------------------


def _status_resources(view: APIView, request: Request) -> list[str]:
    # One bucket per request: the ETag and the body below are of the same 10-second bucket.
    request.status_bucket = status_bucket()
    return [status_etag_resource(request.status_bucket)]


class SystemStatusView(APIView):
    """Health of every part and live metrics. Always 200 (even unhealthy): the readiness
    probe for load balancers is /readyz."""

    policy_action = "system.status.read"
    authentication_classes = [
        OutageTolerantBearerAuthentication,
        OutageTolerantApiKeyAuthentication,
    ]

    @extend_schema(responses={200: SystemStatusSerializer})
    @cached_read(max_age=10, resources=_status_resources)
    def get(self, request: Request) -> Response:
        return Response(status_current(bucket=request.status_bucket))


class SystemConfigView(APIView):
    policy_action = "system.config.read"

    @extend_schema(responses={200: SystemConfigSerializer})
    def get(self, request: Request) -> Response:
        return Response(system_config())


class SystemTaskListCreateView(APIView):
    policy_actions = {"get": "system.tasks.read", "post": "system.tasks.run"}

    @extend_schema(
        parameters=[
            OpenApiParameter("page", int, description="1-based page number (default 1)"),
            OpenApiParameter("limit", int, description="page size (default 20, at most 100)"),
        ],
        responses={200: SystemTaskListSerializer},
        operation_id="v1_system_tasks_list",
    )
    def get(self, request: Request) -> Response:
        page, limit = page_params(request)
        tasks = system_tasks_recent()
        total = tasks.count()
        rows = tasks[(page - 1) * limit : page * limit]
        return Response(
            {
                "tasks": SystemTaskSerializer(rows, many=True).data,
                "pagination": {"page": page, "limit": limit, "total": total},
            }
        )

    @extend_schema(
        request=SystemTaskCreateInputSerializer, responses={202: SystemTaskQueuedSerializer}
    )
    def post(self, request: Request) -> Response:
        def handler() -> Response:
            data = validated(SystemTaskCreateInputSerializer, request.data)
            task = system_task_create(
                task_type=data["task_type"],
                parameters=data["parameters"],
                requested_by=request.user,
            )
            return Response(SystemTaskQueuedSerializer(task).data, status=202)

        return idempotent(request, handler)


class SystemTaskDetailView(APIView):
    policy_action = "system.tasks.read"

    @extend_schema(responses={200: SystemTaskSerializer}, operation_id="v1_system_tasks_read")
    def get(self, request: Request, task_id: str) -> Response:
        return Response(SystemTaskSerializer(system_task_get(task_id=task_id)).data)


@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format. 404 unless METRICS_ENABLED; then 401 without
    `Authorization: Bearer <METRICS_TOKEN>` (a static token, as Prometheus' `authorization`
    scrape option sends it, not an API key: scrapers hold no user)."""
    if not getattr(settings, "METRICS_ENABLED", False):
        return HttpResponse(status=404)
    expected = getattr(settings, "METRICS_TOKEN", "")
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if not (
        expected
        and scheme.lower() == "bearer"
        and hmac.compare_digest(token.encode(), expected.encode())
    ):
        response = HttpResponse("Bearer token required.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="371os-metrics"'
        return response
    return HttpResponse(generate_latest(metrics_registry()), content_type=CONTENT_TYPE_LATEST)

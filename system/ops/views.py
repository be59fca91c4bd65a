"""System operations API: status, configuration, system tasks; and the Prometheus endpoint.

GET  /api/v1/system/status          every role (system.status.read); cached 10 s, ETag
GET  /api/v1/system/config          admin (system.config.read)
POST /api/v1/system/tasks           admin (system.tasks.run) → 202, run by the worker
GET  /api/v1/system/tasks[/<id>]    admin, system_monitor (system.tasks.read)
GET  /api/v1/system/events          admin, system_monitor (system.events.read): events_api
GET  /, /healthz, /readyz           the landing page, liveness, readiness
GET  /metrics                       Prometheus; off unless METRICS_ENABLED, bearer token
"""

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from drf_spectacular.utils import extend_schema
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from system.auth.outage import (
    OutageTolerantApiKeyAuthentication,
    OutageTolerantBearerAuthentication,
)
from system.kernel.caching import cached_read
from system.kernel.idempotency import idempotent
from system.kernel.pagination import PAGE_PARAMETERS, PagePagination
from system.kernel.validation import validated
from system.kernel.views import websocket_url
from system.ops.metrics import metrics_registry
from system.ops.probes import readiness_probes_run
from system.ops.serializers import (
    SystemConfigSerializer,
    SystemStatusSerializer,
    SystemTaskCreateInputSerializer,
    SystemTaskListSerializer,
    SystemTaskQueuedSerializer,
    SystemTaskSerializer,
)
from system.ops.status import status_bucket, status_current, status_etag_resource, system_config
from system.ops.system_tasks import (
    system_task_create,
    system_task_get,
    system_tasks_recent,
)

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

    @extend_schema(
        responses={200: SystemConfigSerializer},
        description="Limits, timeouts, rate limits and feature switches in force; no secrets.",
    )
    def get(self, request: Request) -> Response:
        return Response(system_config())


class SystemTaskListCreateView(APIView):
    policy_actions = {"get": "system.tasks.read", "post": "system.tasks.run"}

    @extend_schema(
        parameters=PAGE_PARAMETERS,
        responses={200: SystemTaskListSerializer},
        operation_id="v1_system_tasks_list",
        description="System tasks, newest first, with their state and result.",
    )
    def get(self, request: Request) -> Response:
        pagination = PagePagination(request, items_key="tasks")
        rows = pagination.slice(system_tasks_recent())
        return pagination.response(SystemTaskSerializer(rows, many=True).data)

    @extend_schema(
        request=SystemTaskCreateInputSerializer,
        responses={202: SystemTaskQueuedSerializer},
        description="Queue a system task (backup, cache clearing, cleanup, ...) for the worker; "
        "poll `GET /api/v1/system/tasks/{task_id}` for its result. Send `Idempotency-Key` to "
        "make a retry safe.",
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

    @extend_schema(
        responses={200: SystemTaskSerializer},
        operation_id="v1_system_tasks_read",
        description="One system task: queued, running, completed or failed, with its result.",
    )
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


def landing(request: HttpRequest) -> HttpResponse:
    return render(request, "landing.html", {"websocket_url": websocket_url(request)})


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. Touches neither the database nor Redis."""
    return JsonResponse({"status": "ok"})


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: 200 when the database and Redis both answer within 1 s, else 503."""
    results = readiness_probes_run(timeout=1.0)
    checks = {
        r.name: {"ok": r.ok, "latency_ms": r.latency_ms, **({"error": r.error} if r.error else {})}
        for r in results
    }
    ready = all(r.ok for r in results)
    return JsonResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status=200 if ready else 503,
    )

"""Plain Django views of the kernel: landing page, health, and the edges of the URL space."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.request import split_domain_port
from django.shortcuts import get_object_or_404, render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiParameter, extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from system import services
from system.errors import error_response
from system.models import ApiKey
from system.pagination import page_params
from system.permissions import PolicyPermission
from system.probes import run_probes
from system.serializers import (
    ApiKeyCreatedSerializer,
    ApiKeyCreateInputSerializer,
    ApiKeyListSerializer,
    ApiKeySerializer,
    TokenObtainInputSerializer,
    TokenPairSerializer,
    TokenRefreshInputSerializer,
    TokenRevokedSerializer,
)
from system.validation import validated


def websocket_url(request: HttpRequest) -> str:
    if settings.WS_PUBLIC_URL:
        return settings.WS_PUBLIC_URL
    scheme = "wss" if request.is_secure() else "ws"
    host, _port = split_domain_port(request.get_host())
    return f"{scheme}://{host}:{settings.WS_PORT}/v1/ws"


def landing(request: HttpRequest) -> HttpResponse:
    return render(request, "landing.html", {"websocket_url": websocket_url(request)})


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. Touches neither the database nor Redis."""
    return JsonResponse({"status": "ok"})


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: 200 when the database and Redis both answer within 1 s, else 503."""
    results = run_probes(timeout=1.0)
    checks = {
        r.name: {"ok": r.ok, "latency_ms": r.latency_ms, **({"error": r.error} if r.error else {})}
        for r in results
    }
    ready = all(r.ok for r in results)
    return JsonResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status=200 if ready else 503,
    )


@csrf_exempt
def websocket_upgrade_required(request: HttpRequest) -> JsonResponse:
    """Plain HTTP on the WebSocket path of the API port: say where the WebSocket lives."""
    url = websocket_url(request)
    response = error_response(
        "upgrade_required",
        f"This is a WebSocket endpoint; connect to {url}.",
        426,
        {"websocket_url": url},
    )
    response["Upgrade"] = "websocket"
    response["Connection"] = "Upgrade"
    return response


@csrf_exempt
def api_not_found(request: HttpRequest, path: str = "") -> JsonResponse:
    """Any path under /api/ that no endpoint claims: 404 in the envelope, never HTML."""
    return error_response("not_found", "No such endpoint.", 404)


# --- Authentication API ---------------------------------------------------------------------


class TokenObtainView(APIView):
    policy_action = "auth.token.obtain"
    authentication_classes: list = []

    @extend_schema(request=TokenObtainInputSerializer, responses={200: TokenPairSerializer})
    def post(self, request: Request) -> Response:
        data = validated(TokenObtainInputSerializer, request.data)
        pair = services.token_obtain(
            username=data["username"], password=data["password"], request=request._request
        )
        return Response(pair)


class TokenRefreshView(APIView):
    policy_action = "auth.token.refresh"
    authentication_classes: list = []

    @extend_schema(request=TokenRefreshInputSerializer, responses={200: TokenPairSerializer})
    def post(self, request: Request) -> Response:
        data = validated(TokenRefreshInputSerializer, request.data)
        return Response(services.token_refresh(refresh=data["refresh"]))


class TokenRevokeView(APIView):
    policy_action = "auth.token.revoke"
    authentication_classes: list = []

    @extend_schema(request=TokenRefreshInputSerializer, responses={200: TokenRevokedSerializer})
    def post(self, request: Request) -> Response:
        data = validated(TokenRefreshInputSerializer, request.data)
        services.token_revoke(refresh=data["refresh"])
        return Response({"revoked": True})


class ApiKeyListCreateView(APIView):
    policy_actions = {"get": "auth.api_keys.list", "post": "auth.api_keys.create"}

    @extend_schema(
        parameters=[
            OpenApiParameter("page", int, description="1-based page number"),
            OpenApiParameter("limit", int, description="page size, at most 100"),
        ],
        responses={200: ApiKeyListSerializer},
    )
    def get(self, request: Request) -> Response:
        page, limit = page_params(request)
        keys = ApiKey.objects.select_related("owner").order_by("-created_at", "-id")
        total = keys.count()
        rows = keys[(page - 1) * limit : page * limit]
        return Response(
            {
                "api_keys": ApiKeySerializer(rows, many=True).data,
                "pagination": {"page": page, "limit": limit, "total": total},
            }
        )

    @extend_schema(request=ApiKeyCreateInputSerializer, responses={201: ApiKeyCreatedSerializer})
    def post(self, request: Request) -> Response:
        data = validated(ApiKeyCreateInputSerializer, request.data)
        api_key, key = services.api_key_create(
            name=data["name"],
            owner=request.user,
            roles=data["roles"],
            expires_at=data.get("expires_at"),
        )
        body = ApiKeySerializer(api_key).data
        return Response({**body, "key": key}, status=201)


class ApiKeyRevokeView(APIView):
    policy_action = "auth.api_keys.revoke"

    @extend_schema(request=None, responses={200: ApiKeySerializer})
    def post(self, request: Request, key_id: int) -> Response:
        api_key = get_object_or_404(ApiKey.objects.select_related("owner"), pk=key_id)
        return Response(ApiKeySerializer(services.api_key_revoke(api_key=api_key)).data)


class SchemaView(SpectacularAPIView):
    policy_action = "docs.read"
    permission_classes = [PolicyPermission]


class SwaggerView(SpectacularSwaggerView):
    policy_action = "docs.read"
    permission_classes = [PolicyPermission]

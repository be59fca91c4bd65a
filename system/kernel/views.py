"""The edges of the URL space: unknown API paths, the WebSocket path on the HTTP port, the
OpenAPI schema and its UI."""

from functools import cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.http.request import split_domain_port
from django.urls import Resolver404, resolve
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.request import Request
from rest_framework.views import APIView

from system.kernel.deprecation import deprecations_html
from system.kernel.errors import error_response
from system.kernel.permissions import PolicyPermission


def websocket_url(request: HttpRequest) -> str:
    if settings.WS_PUBLIC_URL:
        return settings.WS_PUBLIC_URL
    scheme = "wss" if request.is_secure() else "ws"
    host, _port = split_domain_port(request.get_host())
    return f"{scheme}://{host}:{settings.WS_PORT}/v1/ws"


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


class PermanentRedirect(HttpResponseRedirect):
    """308: unlike 301, the client repeats the method and the body."""

    status_code = 308


@csrf_exempt
def api_trailing_slash(request: HttpRequest, path: str = "") -> HttpResponse:
    """`/api/v1/x/` is `/api/v1/x`: a 308 there (query kept) when an endpoint claims it,
    else the envelope's 404."""
    try:
        match = resolve(request.path_info[:-1])
    except Resolver404:
        return api_not_found(request)
    if match.func in (api_not_found, api_trailing_slash):
        return api_not_found(request)
    query = request.META.get("QUERY_STRING", "")
    return PermanentRedirect(request.path[:-1] + (f"?{query}" if query else ""))


class SchemaView(SpectacularAPIView):
    policy_action = "docs.read"
    permission_classes = [PolicyPermission]


class SwaggerView(SpectacularSwaggerView):
    policy_action = "docs.read"
    permission_classes = [PolicyPermission]


@cache
def _deprecations_page() -> str:
    return deprecations_html(SchemaGenerator().get_schema(request=None, public=True))


class DeprecationsDocView(APIView):
    """The section deprecation `Link` headers point at, built from the schema."""

    policy_action = "docs.read"
    permission_classes = [PolicyPermission]

    @extend_schema(exclude=True)
    def get(self, request: Request) -> HttpResponse:
        return HttpResponse(_deprecations_page(), content_type="text/html; charset=utf-8")

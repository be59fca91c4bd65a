"""The edges of the URL space: unknown API paths, the WebSocket path on the HTTP port, the
OpenAPI schema and its UI."""

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.http.request import split_domain_port
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

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


class SchemaView(SpectacularAPIView):
    policy_action = "docs.read"
    permission_classes = [PolicyPermission]


class SwaggerView(SpectacularSwaggerView):
    policy_action = "docs.read"
    permission_classes = [PolicyPermission]

"""Plain Django views of the kernel: landing page, health, and the edges of the URL space."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.request import split_domain_port
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from system.errors import error_response
from system.probes import run_probes


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

"""Request counters for the status API and Prometheus, and the recent API errors."""

import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from system.kernel.permissions import COUNTED
from system.models import ApiKey
from system.ops import counters, metrics

# 4xx answers not worth a line among the recent errors: missing credentials, unknown paths and
# rate limiting are what scanners and floods produce, and would push the real errors out.
_NOISE_4XX = frozenset({401, 404, 429})


def _principal_id(request: HttpRequest) -> str:
    user = request.__dict__.get("user")  # only if authentication ran; never triggers it
    if user is None or not user.is_authenticated:
        return ""
    auth = request.__dict__.get("auth")
    return f"key:{auth.pk}" if isinstance(auth, ApiKey) else f"user:{user.pk}"


def api_error_of(request: HttpRequest, response: HttpResponse) -> dict | None:
    """What the dashboard lists of a failed request: any 5xx, and a 4xx under /api/ other than
    401, 404 and 429. The path without its query string (which may carry a token), no bodies."""
    status = response.status_code
    if status < 400 or (status < 500 and (status in _NOISE_4XX or not _is_api(request))):
        return None
    return {
        "method": request.method or "",
        "path": request.path[:300],
        "status": status,
        "code": getattr(response, "error_code", "") or "",
        "request_id": getattr(request, "request_id", ""),
        "principal": _principal_id(request),
    }


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


class RequestCountersMiddleware:
    """Counts every request for the status API (per-minute totals and 5xx in Redis: one
    pipelined round trip, no database write) and for Prometheus (this process's request
    counter and latency histogram, by route pattern: bounded label values). A failed request
    is also recorded among the recent API errors, in the same round trip."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.request_observed = metrics.request_observed
        self.request_counted = counters.request_counted

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        self.request_counted(
            status_code=response.status_code,
            counted=request.__dict__.get(COUNTED, False),
            api_error=api_error_of(request, response) if response.status_code >= 400 else None,
        )
        self.request_observed(
            route=(match.route or match.view_name) if match else "<unmatched>",
            method=request.method or "",
            status_code=response.status_code,
            seconds=time.perf_counter() - started,
        )
        return response

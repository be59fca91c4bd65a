"""Request counters for the status API and Prometheus."""

import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from system.kernel.permissions import COUNTED
from system.ops import counters, metrics


class RequestCountersMiddleware:
    """Counts every request for the status API (per-minute totals and 5xx in Redis: one
    pipelined round trip, no database write) and for Prometheus (this process's request
    counter and latency histogram, by route pattern: bounded label values)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.request_observed = metrics.request_observed
        self.request_counted = counters.request_counted

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        self.request_counted(
            status_code=response.status_code, counted=request.__dict__.get(COUNTED, False)
        )
        self.request_observed(
            route=(match.route or match.view_name) if match else "<unmatched>",
            method=request.method or "",
            status_code=response.status_code,
            seconds=time.perf_counter() - started,
        )
        return response

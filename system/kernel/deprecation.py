"""Deprecation headers: `Deprecation` (RFC 9745, `@<unix seconds>`), `Sunset` (RFC 8594,
an HTTP-date six months later) and `Link: <note>; rel="deprecation"`, and the served page the
link points at: the schema's deprecated operations, each under an anchor of its own.

`deprecated_endpoint_used` is sent (robustly: a receiver's error never reaches the request)
for every authenticated call of a deprecated operation, with `principal`, `method`, `path`
(the route, its parameters as `{name}`, no query string), `sunset` (a datetime) and `link`
(the migration note's path): system.notify turns the first one a day into an email alert."""

import calendar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.dispatch import Signal
from django.utils.html import format_html, format_html_join
from django.utils.http import http_date
from rest_framework.request import Request
from rest_framework.response import Response

from system.kernel.principal import principal_from_request

SUNSET_MONTHS = 6
DEPRECATIONS_PAGE = "/api/docs/deprecations"
DEPRECATIONS_DOC = f"{DEPRECATIONS_PAGE}#deprecations"

deprecated_endpoint_used = Signal()


def add_months(moment: datetime, months: int) -> datetime:
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


@dataclass(frozen=True)
class Deprecation:
    deprecated_at: datetime
    link: str = DEPRECATIONS_DOC

    def headers(self) -> dict[str, str]:
        sunset = add_months(self.deprecated_at, SUNSET_MONTHS)
        return {
            "Deprecation": f"@{int(self.deprecated_at.timestamp())}",
            "Sunset": http_date(sunset.timestamp()),
            "Link": f'<{self.link}>; rel="deprecation"',
        }


class DeprecationMixin:
    """For DRF views: `deprecations` maps a viewset action (or HTTP method) to a Deprecation."""

    deprecations: dict[str, Deprecation] = {}

    def finalize_response(self, request: Request, response: Response, *args, **kwargs) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        key = getattr(self, "action", None) or request.method.lower()
        deprecation = self.deprecations.get(key)
        if deprecation is not None:
            for name, value in deprecation.headers().items():
                response[name] = value
            if request.user is not None and request.user.is_authenticated:
                deprecated_endpoint_used.send_robust(
                    sender=type(self),
                    principal=principal_from_request(request),
                    method=request.method,
                    path=route_path(request),
                    sunset=add_months(deprecation.deprecated_at, SUNSET_MONTHS),
                    link=deprecation.link,
                )
        return response


def route_path(request: Request) -> str:
    """The request's path with its URL parameters as `{name}`: one operation whatever the
    object (`/api/v1/agents/{agent_id}/restart`), no query string."""
    path = request.path
    match = getattr(request, "resolver_match", None)
    for name, value in (match.kwargs if match else {}).items():
        path = path.replace(f"/{value}", "/{" + name + "}", 1)
    return path


def deprecated_operations(schema: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(operationId, METHOD, path, description) of each operation the schema marks
    deprecated, in path order."""
    return [
        (op["operationId"], method.upper(), path, op.get("description", ""))
        for path, item in sorted(schema.get("paths", {}).items())
        for method, op in item.items()
        if isinstance(op, dict) and op.get("deprecated")
    ]


def deprecations_html(schema: dict[str, Any]) -> str:
    """The page `Link` headers point at: a `deprecations` section, one anchor per operation."""
    items = format_html_join(
        "\n",
        '<li id="{}"><code>{} {}</code>: {}</li>',
        deprecated_operations(schema),
    )
    return format_html(
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>Deprecations: {}</title></head><body>\n"
        '<section id="deprecations"><h1>Deprecations</h1>\n'
        "<p>A deprecated endpoint keeps working until the date in its <code>Sunset</code> "
        "header, {} months after its <code>Deprecation</code> date, and is gone in v2.</p>\n"
        "<ul>\n{}\n</ul></section>\n"
        '<p>The full reference: <a href="/api/docs/">/api/docs/</a>.</p>\n</body></html>\n',
        schema.get("info", {}).get("title", "API"),
        SUNSET_MONTHS,
        items,
    )

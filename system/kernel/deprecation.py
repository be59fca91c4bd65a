"""Deprecation headers: `Deprecation` (RFC 9745, `@<unix seconds>`), `Sunset` (RFC 8594,
an HTTP-date six months later) and `Link: <note>; rel="deprecation"`."""

import calendar
from dataclasses import dataclass
from datetime import datetime

from django.utils.http import http_date
from rest_framework.request import Request
from rest_framework.response import Response

SUNSET_MONTHS = 6


def add_months(moment: datetime, months: int) -> datetime:
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


@dataclass(frozen=True)
class Deprecation:
    deprecated_at: datetime
    link: str

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
        return response

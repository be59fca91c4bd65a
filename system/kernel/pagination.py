"""`page`/`limit` pagination of the list endpoints: bad numbers are a 400, a too-large limit is
capped, and a page renders as `{<items key>: [...], "pagination": {"page", "limit", "total"}}`.

Every view reads `page` and `limit` through this module (PagePagination, or `limit_param` for a
list paged by cursor), so a careless value is refused the same way everywhere: not an integer,
below 1, or a page beyond MAX_PAGE is a 400 `validation_error` naming the parameter, never
silently changed into something the client did not ask for."""

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter
from rest_framework.request import Request
from rest_framework.response import Response

from system.kernel.exceptions import ValidationFailed

# The query parameters of a list paged with the default limits, for its OpenAPI description.
PAGE_PARAMETERS = [
    OpenApiParameter("page", int, description="1-based page number (default 1)"),
    OpenApiParameter("limit", int, description="page size (default 20, at most 100)"),
]


# Far beyond any list a client pages through, and OFFSET (at most 10^6 * 100) stays below 2^31:
# an unbounded page overflowed it, a 500 on PostgreSQL.
MAX_PAGE = 1_000_000


def _refuse(name: str, message: str, detail: str) -> ValidationFailed:
    return ValidationFailed(message, details={name: [detail]})


def _int_param(request: Request, name: str, default: int) -> int:
    """The query parameter `name` as an integer of at least 1 (`default` when absent)."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _refuse(name, f"'{name}' must be an integer.", "Must be an integer.") from None
    if value < 1:
        detail = "Ensure this value is greater than or equal to 1."
        raise _refuse(name, f"'{name}' must be at least 1.", detail)
    return value


def page_param(request: Request) -> int:
    """The 1-based `page` asked for: 1 when absent, a 400 below 1 or beyond MAX_PAGE."""
    page = _int_param(request, "page", 1)
    if page > MAX_PAGE:
        raise _refuse(
            "page",
            f"'page' must be at most {MAX_PAGE}.",
            f"Ensure this value is less than or equal to {MAX_PAGE}.",
        )
    return page


def limit_param(request: Request, *, default: int, max_limit: int) -> int:
    """The page size asked for: `default` when absent, a 400 below 1, at most `max_limit`
    (a larger one is capped, as the endpoints document)."""
    return min(_int_param(request, "limit", default), max_limit)


class PagePagination:
    """The page one list request asks for. Built per request, where the view reads its query
    parameters: a `page` or `limit` that is not an integer or is below 1, or a page above
    MAX_PAGE, raises ValidationFailed (400) there; a limit above `max_limit` is capped.

        pagination = PagePagination(request, items_key="agents")
        rows = pagination.slice(Agent.objects.all())
        return pagination.response(AgentSummarySerializer(rows, many=True).data)
    """

    def __init__(
        self, request: Request, *, items_key: str, default_limit: int = 20, max_limit: int = 100
    ) -> None:
        self.items_key = items_key
        self.page = page_param(request)
        self.limit = limit_param(request, default=default_limit, max_limit=max_limit)
        self.total = 0

    def slice(self, queryset: QuerySet, *, count: QuerySet | None = None) -> QuerySet:
        """This page's rows of `queryset`, and `total` set to the number of rows of `count`
        (`queryset` by default). Pass the plain queryset as `count` when `queryset` carries
        aggregate annotations: counting those wraps the COUNT around their joins."""
        self.total = (queryset if count is None else count).count()
        return queryset[(self.page - 1) * self.limit : self.page * self.limit]

    def response(self, items: list[Any]) -> Response:
        return Response(
            {
                self.items_key: items,
                "pagination": {"page": self.page, "limit": self.limit, "total": self.total},
            }
        )

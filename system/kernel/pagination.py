"""`page`/`limit` pagination of the list endpoints: bad numbers are a 400, a too-large limit is
capped, and a page renders as `{<items key>: [...], "pagination": {"page", "limit", "total"}}`."""

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


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValidationFailed(
            f"'{name}' must be an integer.", details={name: ["Must be an integer."]}
        ) from None


class PagePagination:
    """The page one list request asks for. Built per request, where the view reads its query
    parameters: a `page` or `limit` that is not an integer, or a page above MAX_PAGE, raises
    ValidationFailed (400) there; a page below 1 is page 1, a limit is clamped to 1..`max_limit`.

        pagination = PagePagination(request, items_key="agents")
        rows = pagination.slice(Agent.objects.all())
        return pagination.response(AgentSummarySerializer(rows, many=True).data)
    """

    def __init__(
        self, request: Request, *, items_key: str, default_limit: int = 20, max_limit: int = 100
    ) -> None:
        self.items_key = items_key
        self.page = max(1, _int_param(request, "page", 1))
        if self.page > MAX_PAGE:
            raise ValidationFailed(
                f"'page' must be at most {MAX_PAGE}.",
                details={"page": [f"Ensure this value is less than or equal to {MAX_PAGE}."]},
            )
        self.limit = min(max(1, _int_param(request, "limit", default_limit)), max_limit)
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

"""`page`/`limit` query parameters: bad numbers are a 400, a too-large limit is capped."""

from rest_framework.request import Request

from system.kernel.exceptions import ValidationFailed


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


def page_params(
    request: Request, *, default_limit: int = 20, max_limit: int = 100
) -> tuple[int, int]:
    page = max(1, _int_param(request, "page", 1))
    limit = min(max(1, _int_param(request, "limit", default_limit)), max_limit)
    return page, limit

"""Object-level access for resource owners: a principal sees its own objects, `admin` sees
all, and anything else is a 404, so that existence does not leak."""

from typing import Any

from django.db.models import Model, QuerySet

from system.kernel.exceptions import NotFound
from system.kernel.principal import Principal


def unique_or_none(queryset: QuerySet) -> Model | None:
    """The row a unique lookup (a primary key, a unique name) selects, or None: `.first()`
    without the ORDER BY it adds, which costs a compile step on every hot read and orders
    at most one row."""
    rows = list(queryset[:1])
    return rows[0] if rows else None


def visible_to(queryset: QuerySet, *, principal: Principal, owner_field: str = "owner") -> QuerySet:
    if principal.is_admin:
        return queryset
    return queryset.filter(**{owner_field: principal.user_id})


def get_visible_or_404(
    queryset: QuerySet,
    *,
    principal: Principal,
    owner_field: str = "owner",
    not_found: type[NotFound] = NotFound,
    **lookup: Any,
) -> Model:
    obj = unique_or_none(
        visible_to(queryset, principal=principal, owner_field=owner_field).filter(**lookup)
    )
    if obj is None:
        raise not_found()
    return obj

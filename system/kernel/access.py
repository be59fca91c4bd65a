"""Object-level access for resource owners: a principal sees its own objects, `admin` sees
all, and anything else is a 404, so that existence does not leak."""

from typing import Any

from django.db.models import Model, QuerySet
from rest_framework.request import Request

from system.kernel.exceptions import NotFound
from system.kernel.principal import request_roles
from system.kernel.roles import ADMIN


def visible_to(queryset: QuerySet, request: Request, *, owner_field: str = "owner") -> QuerySet:
    if ADMIN in request_roles(request):
        return queryset
    return queryset.filter(**{owner_field: request.user})


def get_visible_or_404(
    queryset: QuerySet,
    request: Request,
    *,
    owner_field: str = "owner",
    not_found: type[NotFound] = NotFound,
    **lookup: Any,
) -> Model:
    obj = visible_to(queryset, request, owner_field=owner_field).filter(**lookup).first()
    if obj is None:
        raise not_found()
    return obj

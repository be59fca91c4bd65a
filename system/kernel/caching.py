"""Conditional GETs for the spec's cached reads: `Cache-Control: private, max-age=N`, a strong
ETag, `Vary: Authorization, X-API-KEY`, and 304 on `If-None-Match`.

The tag is computed from cheap per-resource versions kept in Redis, not from the body, so a 304
costs one MGET and no rendering. Services that change a resource call
`resource_version_bump()` inside their transaction; the bump happens on commit, before the
writer's response is sent, so a read that follows a write never gets a stale 304.
"""

import functools
import hashlib
import logging
import time
from collections.abc import Callable, Iterable

import redis
from django.db import transaction
from rest_framework.request import Request
from rest_framework.response import Response

from system.kernel.principal import principal_from_request
from system.kernel.redis_client import get_redis

logger = logging.getLogger(__name__)

VARY = "Authorization, X-API-KEY"


def _key(resource: str) -> str:
    return f"371os:ver:{resource}"


def resource_versions(resources: list[str]) -> list[str] | None:
    """Current versions, or None when Redis cannot be reached (then nothing is tagged).

    A missing version is created from the clock, so that a Redis that lost its data can never
    hand out a version a client saw before the loss.
    """
    try:
        client = get_redis()
        versions = client.mget([_key(r) for r in resources])
        for i, version in enumerate(versions):
            if version is None:
                client.set(_key(resources[i]), time.time_ns(), nx=True)
                versions[i] = client.get(_key(resources[i]))
        return [v.decode() for v in versions]
    except redis.RedisError as exc:
        logger.warning("ETags disabled, Redis unreachable (%s)", type(exc).__name__)
        return None


def _bump(resources: tuple[str, ...]) -> None:
    try:
        now = time.time_ns()
        get_redis().mset({_key(r): now for r in resources})
    except redis.RedisError as exc:
        logger.error("could not bump cache versions %s (%s)", resources, type(exc).__name__)


def resource_version_bump(*resources: str) -> None:
    """Mark resources changed, when the current transaction commits (at once outside one)."""
    transaction.on_commit(functools.partial(_bump, resources), robust=True)


def _etag(request: Request, versions: Iterable[str]) -> str:
    # The principal is part of the tag: what a caller may see depends on who they are.
    who = principal_from_request(request).id if request.user.is_authenticated else "anonymous"
    basis = "|".join([who, request.get_full_path(), *versions])
    return '"' + hashlib.sha256(basis.encode()).hexdigest()[:32] + '"'


def _matches(header: str, etag: str) -> bool:
    # Exact tags only: "*" would answer 304 before the view could say 404 (a resource that
    # does not exist, or one the caller may not see).
    return etag in {tag.strip() for tag in header.split(",")}


def cached_read(
    *, max_age: int, resources: Callable[..., list[str]]
) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """Decorate a DRF view method. `resources(view, request, *args, **kwargs)` names the
    versioned resources the response depends on."""

    def decorator(method: Callable[..., Response]) -> Callable[..., Response]:
        @functools.wraps(method)
        def wrapper(view, request: Request, *args, **kwargs) -> Response:
            versions = resource_versions(resources(view, request, *args, **kwargs))
            etag = _etag(request, versions) if versions is not None else None
            headers = {"Cache-Control": f"private, max-age={max_age}", "Vary": VARY}
            if etag:
                headers["ETag"] = etag
                if _matches(request.headers.get("If-None-Match", ""), etag):
                    return Response(status=304, headers=headers)
            response = method(view, request, *args, **kwargs)
            if response.status_code == 200:
                for name, value in headers.items():
                    response[name] = value
            return response

        return wrapper

    return decorator

"""The API as the URL conf declares it: every (route, HTTP method) under /api/ with the policy
action its view declares, resolved the way PolicyPermission resolves it. The role and owner
matrices are generated from this, so a new route is in them without anyone listing it."""

import re
import uuid
from dataclasses import dataclass
from types import SimpleNamespace

from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.views import APIView

from system.kernel.permissions import policy_action_of
from system.kernel.views import api_not_found, api_trailing_slash, websocket_upgrade_required

# Plain Django views under /api/ that answer without touching any resource.
NOT_POLICED = {api_not_found, api_trailing_slash, websocket_upgrade_required}
_PATH_PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")
_REGEX_PARAM = re.compile(r"\(\?P<(\w+)>[^)]*\)")


@dataclass(frozen=True)
class Operation:
    """One HTTP method of one route. `template` is the path with `{name}` for each id;
    `params` are the ids in path order with their converter (`regex` for a router's group)."""

    template: str
    method: str
    action: str | None
    params: tuple[tuple[str, str], ...]
    callback: object

    @property
    def label(self) -> str:
        return f"{self.method.upper()} {self.template}"

    def url(self, **ids: object) -> str:
        return self.template.format(**ids)

    def sample_url(self) -> str:
        """The path with a random id of each converter's type: an object that does not exist."""
        return self.url(**{name: sample_id(converter) for name, converter in self.params})


def sample_id(converter: str) -> str:
    return str(uuid.uuid4().int % 10**9) if converter == "int" else str(uuid.uuid4())


def _route_template(route: str, pattern: URLPattern) -> tuple[str, tuple[tuple[str, str], ...]]:
    if route.startswith("^"):  # a regex route (DRF routers): every named group is an id
        params = tuple((name, "regex") for name in _REGEX_PARAM.findall(route))
        path = _REGEX_PARAM.sub(lambda m: "{" + m.group(1) + "}", route)
        return "/" + path.lstrip("^").rstrip("$").replace("/?", ""), params
    converters = pattern.pattern.converters
    params = tuple(
        (name, type(converters[name]).__name__.replace("Converter", "").lower())
        for _, name in _PATH_PARAM.findall(route)
    )
    return "/" + _PATH_PARAM.sub(lambda m: "{" + m.group(2) + "}", route), params


def api_patterns() -> list[tuple[str, URLPattern]]:
    """(route text, pattern) of every URL pattern under /api/, includes flattened."""
    found = []

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif route.lstrip("^").startswith("api/"):
                found.append((route, pattern))

    walk(get_resolver().url_patterns, "")
    return found


def _methods(callback) -> list[tuple[str, str | None]]:
    """(HTTP method, viewset action or None) for each method the view answers."""
    if getattr(callback, "actions", None):  # a viewset route: the router's method → action
        return [(m, a) for m, a in callback.actions.items() if m != "head"]
    view_class = callback.cls
    return [
        (m, None)
        for m in view_class.http_method_names
        if m not in {"options", "head"} and hasattr(view_class, m)
    ]


def _action_of(callback, method: str, viewset_action: str | None) -> str | None:
    view = callback.cls()
    if viewset_action:
        view.action = viewset_action
    return policy_action_of(view, SimpleNamespace(method=method.upper()))


def api_views() -> list[tuple[str, object]]:
    """(route text, view callback) of every policed route: the ones a matrix covers."""
    return [(r, p.callback) for r, p in api_patterns() if p.callback not in NOT_POLICED]


def api_operations() -> list[Operation]:
    operations = []
    for route, pattern in api_patterns():
        callback = pattern.callback
        if callback in NOT_POLICED or not issubclass(getattr(callback, "cls", object), APIView):
            continue
        template, params = _route_template(route, pattern)
        operations += [
            Operation(template, method, _action_of(callback, method, action), params, callback)
            for method, action in _methods(callback)
        ]
    return operations

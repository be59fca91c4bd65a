"""The policy engine: every API view declares an action, every action is in the rules file,
and each role gets exactly what the file says, through the real URLs."""

import re
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.views import APIView

from system.kernel.access import get_visible_or_404, visible_to
from system.kernel.exceptions import NotFound
from system.kernel.permissions import policy_action_of
from system.kernel.policy import PolicyError, get_policy, policy_parse, policy_reload
from system.kernel.principal import principal_from_request
from system.kernel.roles import ROLES
from system.kernel.views import api_not_found, websocket_upgrade_required
from system.models import ApiKey

# Plain Django views under /api/ that answer without touching any resource.
NOT_POLICED = {api_not_found, websocket_upgrade_required}
SAMPLE_ARGS = {"int": "999999", "uuid": str(uuid.uuid4()), "str": "sample", "slug": "sample"}

pytestmark = pytest.mark.embedded


def api_routes() -> list[tuple[str, object]]:
    """(path, view callback) of every URL pattern under /api/, sample values for converters."""
    routes = []

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern) and route.lstrip("^").startswith("api/"):
                path = route
                for name, converter in pattern.pattern.converters.items():
                    kind = type(converter).__name__.replace("Converter", "").lower()
                    sample = SAMPLE_ARGS.get(kind, SAMPLE_ARGS["str"])
                    path = re.sub(rf"<(\w+:)?{name}>", sample, path)
                # Regex routes (DRF routers): every named group gets a sample value.
                path = re.sub(r"\(\?P<\w+>[^)]*\)", SAMPLE_ARGS["str"], path)
                path = path.lstrip("^").rstrip("$").replace("/?", "")
                routes.append(("/" + path, pattern.callback))

    walk(get_resolver().url_patterns, "")
    return routes


def declared_actions(callback) -> list[tuple[str, str | None]]:
    """(HTTP method, policy action) for each method the view answers, resolved the way
    PolicyPermission resolves it."""
    view_class = callback.cls
    if getattr(callback, "actions", None):  # a viewset route: HTTP method -> viewset action
        pairs = [(m, a) for m, a in callback.actions.items() if m != "head"]
    else:
        pairs = [
            (m, None)
            for m in view_class.http_method_names
            if m not in {"options", "head"} and hasattr(view_class, m)
        ]
    resolved = []
    for method, viewset_action in pairs:
        view = view_class()
        if viewset_action:
            view.action = viewset_action
        resolved.append((method, policy_action_of(view, SimpleNamespace(method=method.upper()))))
    return resolved


def policed_operations() -> list[tuple[str, str, str]]:
    return [
        (method, path, action)
        for path, callback in api_routes()
        if callback not in NOT_POLICED
        for method, action in declared_actions(callback)
    ]


def test_every_api_view_declares_an_action_that_the_rules_file_knows():
    policy = get_policy()
    undeclared = []
    for path, callback in api_routes():
        if callback in NOT_POLICED:
            continue
        assert issubclass(getattr(callback, "cls", object), APIView), f"{path} is not a DRF view"
        undeclared += [
            f"{m.upper()} {path}: {a}"
            for m, a in declared_actions(callback)
            if a is None or a not in policy.actions
        ]

    assert undeclared == []
    assert len(policed_operations()) >= 7


@pytest.mark.django_db
@pytest.mark.parametrize("role", [*ROLES, None], ids=[*ROLES, "anonymous"])
def test_role_action_matrix_matches_the_rules_file(role, client_as):
    policy = get_policy()
    client = client_as(role) if role else APIClient()
    mismatches = []
    for method, path, action in policed_operations():
        rule = policy.actions[action]
        response = getattr(client, method)(path, {}, format="json")
        status = response.status_code
        if rule.public or (role and role in rule.roles):
            ok = status not in (401, 403)
        elif role is None:
            ok = status == 401 and response.json()["error"]["code"] == "authentication_required"
        else:
            error = response.json()["error"]
            ok = (
                status == 403
                and error["code"] == "insufficient_permissions"
                and error["details"]["action"] == action
            )
        if not ok:
            mismatches.append(f"{role} {method.upper()} {path} ({action}) -> {status}")

    assert mismatches == []


def write_rules(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    return path


VALID = Path(settings.ROUTING_RULES_PATH).read_text()


def test_unknown_role_is_rejected_naming_the_line(tmp_path):
    text = VALID.replace("auth.api_keys.list: [admin]", "auth.api_keys.list: [admin, wizard]")
    line = text.splitlines().index("  auth.api_keys.list: [admin, wizard]") + 1

    with pytest.raises(PolicyError, match=rf"rules\.yaml:{line}: unknown role 'wizard'"):
        policy_parse(text, write_rules(tmp_path, text))


def test_malformed_yaml_is_rejected_naming_the_line(tmp_path):
    text = "roles: [admin\nactions: {}\n"

    with pytest.raises(PolicyError, match=r"rules\.yaml:\d+: not valid YAML"):
        policy_parse(text, write_rules(tmp_path, text))


def test_missing_section_is_rejected(tmp_path):
    text = "roles: [admin, agent_manager, messaging, system_monitor]\nactions: {}\n"

    with pytest.raises(PolicyError, match="missing section 'rate_limits'"):
        policy_parse(text, write_rules(tmp_path, text))


@pytest.mark.django_db
def test_reload_applies_an_edited_file_without_restart(tmp_path, settings, client_as):
    settings.ROUTING_RULES_PATH = write_rules(tmp_path, VALID)
    monitor = client_as("system_monitor")
    assert monitor.get("/api/v1/auth/api-keys").status_code == 403

    settings.ROUTING_RULES_PATH.write_text(
        VALID.replace("auth.api_keys.list: [admin]", "auth.api_keys.list: [admin, system_monitor]")
    )
    policy_reload()

    assert monitor.get("/api/v1/auth/api-keys").status_code == 200


@pytest.mark.django_db
def test_invalid_edit_keeps_the_last_good_policy(tmp_path, settings, client_as):
    settings.ROUTING_RULES_PATH = write_rules(tmp_path, VALID)
    get_policy()
    settings.ROUTING_RULES_PATH.write_text(VALID.replace("[admin]", "[admin, wizard]"))

    with pytest.raises(PolicyError):
        policy_reload()

    assert get_policy().actions["auth.api_keys.list"].roles == {"admin"}


@pytest.mark.django_db
def test_owner_sees_own_objects_admin_sees_all_others_get_404(make_user, make_api_key):
    alice, bob = make_user("alice"), make_user("bob")
    make_api_key(["messaging"], owner=alice)
    bobs_key = make_api_key(["messaging"], owner=bob)
    bobs_row = ApiKey.objects.get(prefix=bobs_key.split("_")[1])

    def principal_of(key: str):
        request = APIRequestFactory().get("/", HTTP_X_API_KEY=key)
        return principal_from_request(APIView().initialize_request(request))

    as_bob = principal_of(bobs_key)
    as_admin = principal_of(make_api_key(["admin"]))
    as_alice = principal_of(make_api_key(["messaging"], owner=alice))

    assert list(visible_to(ApiKey.objects.all(), principal=as_bob)) == [bobs_row]
    assert visible_to(ApiKey.objects.all(), principal=as_admin).count() == 4
    assert get_visible_or_404(ApiKey.objects.all(), principal=as_admin, pk=bobs_row.pk) == bobs_row
    with pytest.raises(NotFound):
        get_visible_or_404(ApiKey.objects.all(), principal=as_alice, pk=bobs_row.pk)

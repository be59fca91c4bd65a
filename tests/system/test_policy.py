"""The policy engine: the rules file is validated and reloadable; object-level access by owner.
The role-by-action matrix over every route is tests/system/test_role_matrix.py."""

from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from system.kernel.access import get_visible_or_404, visible_to
from system.kernel.exceptions import NotFound
from system.kernel.policy import PolicyError, get_policy, policy_parse, policy_reload
from system.kernel.principal import principal_from_request
from system.models import ApiKey

pytestmark = pytest.mark.embedded


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

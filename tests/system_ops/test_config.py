"""GET /api/v1/system/config (admin): what runs, with no secrets."""

import json

import pytest

import config
from system.kernel.policy import get_policy

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

URL = "/api/v1/system/config"
SECRET = "sk-test-secret-value"


def test_admin_reads_version_environment_providers_defaults_limits_and_sessions(
    client_as, settings
):
    settings.ENVIRONMENT = "staging"

    body = client_as("admin").get(URL).json()

    assert body["version"] == config.__version__
    assert body["environment"] == "staging"
    providers = {p["name"]: p for p in body["llm_provider_status"]}
    assert providers["builtin"]["kind"] == "builtin"
    assert providers["builtin"]["healthy"] is True
    assert "builtin-responder" in providers["builtin"]["models"]
    assert body["default_agent_config"] == settings.DEFAULT_AGENT_CONFIG
    assert body["rate_limits"]["per_role"] == get_policy().role_limits
    assert body["rate_limits"]["per_action"] == {"auth.token.obtain": 10}
    assert body["session_defaults"] == {
        "timeout_minutes": settings.SESSION_DEFAULT_TIMEOUT_MINUTES,
        "min_timeout_minutes": settings.SESSION_MIN_TIMEOUT_MINUTES,
        "max_timeout_minutes": settings.SESSION_MAX_TIMEOUT_MINUTES,
        "max_duration_minutes": settings.SESSION_MAX_DURATION_MINUTES,
        "warning_threshold_minutes": settings.SESSION_WARNING_THRESHOLD_MINUTES,
    }


def test_llm_providers_are_the_provider_names_as_the_spec_lists_them(client_as):
    body = client_as("admin").get(URL).json()

    assert body["llm_providers"] == [p["name"] for p in body["llm_provider_status"]]
    assert "builtin" in body["llm_providers"]
    assert all(isinstance(name, str) for name in body["llm_providers"])


def test_session_defaults_fall_back_when_the_settings_are_absent(client_as, settings):
    del settings.SESSION_DEFAULT_TIMEOUT_MINUTES
    del settings.SESSION_WARNING_THRESHOLD_MINUTES

    defaults = client_as("admin").get(URL).json()["session_defaults"]

    assert defaults["timeout_minutes"] == 30
    assert defaults["warning_threshold_minutes"] == 5


def test_a_configured_provider_key_never_appears_not_even_in_part(client_as, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)

    response = client_as("admin").get(URL)

    text = response.content.decode()
    providers = {p["name"]: p for p in response.json()["llm_provider_status"]}
    assert providers["openai"]["configured"] is True
    assert SECRET not in text
    assert [SECRET[i : i + 8] for i in range(len(SECRET) - 7) if SECRET[i : i + 8] in text] == []


def test_the_callers_own_api_key_never_appears(make_api_key, api_client):
    key = make_api_key(["admin"])

    text = json.dumps(api_client.get(URL, HTTP_X_API_KEY=key).json())

    assert key.split("_")[2][-8:] not in text
    assert key.split("_")[1] not in text

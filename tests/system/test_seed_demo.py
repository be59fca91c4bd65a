import re
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from agents.models import Agent
from agents.roster import DEMO_AGENT_NAMES
from messaging.models import Channel

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_seed_demo_creates_a_superuser_and_prints_its_password_once():
    output = seed()

    password = re.search(r"admin user: created, password (\S+)", output).group(1)
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser
    assert admin.check_password(password)
    assert password not in admin.password
    # An address, so the demo's email alerts print in the stack's log (console backend).
    assert admin.email == "admin@localhost"


def test_seed_demo_is_idempotent_and_never_prints_the_password_again():
    first = seed()
    password = re.search(r"password (\S+)", first).group(1)

    second = seed()

    assert password not in second
    assert get_user_model().objects.filter(username="admin").count() == 1
    assert get_user_model().objects.get(username="admin").check_password(password)


def test_seed_demo_prints_an_admin_api_key_once(api_client):
    first = seed()
    key = re.search(r"admin API key: created, (371os_\S+)", first).group(1)

    second = seed()

    assert key not in second
    assert "admin API key: exists" in second
    assert api_client.get("/api/v1/auth/api-keys", HTTP_X_API_KEY=key).status_code == 200


def test_seed_demo_leaves_the_executives_running_and_a_general_channel():
    seed()
    Agent.objects.filter(name="cfo-cash-001").update(status="stopped")

    output = seed()

    assert "(0 created, 0 renamed, 1 started)" in output
    assert set(Agent.objects.values_list("name", flat=True)) == set(DEMO_AGENT_NAMES.values())
    assert set(Agent.objects.values_list("status", flat=True)) == {"running"}
    general = Channel.objects.get(name="general")
    assert general.type == "public"
    assert Channel.objects.filter(name="general").count() == 1


def test_seed_demo_names_the_executives_as_the_spec_examples_do():
    seed()

    names = dict(Agent.objects.values_list("name", "type"))
    assert names == {
        "ceo-mimi-001": "ceo_mimi",
        "cfo-cash-001": "cfo_cash",
        "cto-alex-001": "cto_alex",
        "cmo-anova-001": "cmo_anova",
        "clo-sage-001": "clo_sage",
        "cgo-agent-001": "cgo_agent",
        "cpo-agent-001": "cpo_agent",
        "cco-agent-001": "cco_agent",
        "cro-agent-001": "cro_agent",
    }


def test_seed_demo_renames_an_earlier_demos_agents_once_keeping_their_ids():
    seed()
    old = Agent.objects.get(name="ceo-mimi-001")
    Agent.objects.filter(pk=old.pk).update(name="ceo_mimi")

    first = seed()
    second = seed()

    assert "(0 created, 1 renamed, 0 started)" in first
    assert "(0 created, 0 renamed, 0 started)" in second
    assert Agent.objects.get(name="ceo-mimi-001").agent_id == old.agent_id
    assert Agent.objects.filter(type="ceo_mimi").count() == 1

"""C-suite meetings and Akash deployments."""

import re
import stat
import sys

import pytest
import yaml

from agents.services import agent_create, agent_start, agent_stop
from questflow import akash
from questflow.models import Deployment, Meeting
from questflow.services import deployment_submit

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

MEETING_URL = "/api/agents/csuite/meeting"
AKASH_URL = "/api/deploy/akash"


@pytest.fixture
def board():
    return {
        t: agent_start(agent=agent_create(name=t, type=t))
        for t in ("ceo_mimi", "cto_alex", "cfo_cash", "cmo_anova")
    }


def test_meeting_answers_in_the_specs_shape(client_as, board):
    response = client_as("agent_manager").post(MEETING_URL, {}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "meetingId",
        "participants",
        "agenda",
        "outcomes",
        "duration",
        "status",
        "timestamp",
    }
    assert re.fullmatch(r"meeting-\d{13}", body["meetingId"])
    assert body["participants"] == ["CEO", "CTO", "CFO", "CMO"]
    assert body["agenda"] == ["Review quarterly performance", "Discuss new initiatives"]
    assert len(body["outcomes"]) == 2
    assert body["status"] == "completed"
    assert re.fullmatch(r"\d+ (seconds?|minutes)", body["duration"])


def test_the_transcript_follows_agenda_then_participants(client_as, board):
    client = client_as("agent_manager")
    meeting_id = client.post(
        MEETING_URL,
        {"agenda": ["Hiring", "Pricing"], "participants": ["CTO", "CFO"]},
        format="json",
    ).json()["meetingId"]

    body = client.get(f"/api/agents/csuite/meetings/{meeting_id}").json()

    order = [(t["agenda_item"], t["title"]) for t in body["transcript"]]
    assert order == [
        ("Hiring", "CEO"),
        ("Hiring", "CTO"),
        ("Hiring", "CFO"),
        ("Pricing", "CEO"),
        ("Pricing", "CTO"),
        ("Pricing", "CFO"),
    ]
    assert "Hiring" in body["outcomes"][0]
    assert "Pricing" in body["outcomes"][1]


def test_a_missing_participant_role_is_409_naming_it(client_as, board):
    agent_stop(agent=board["cfo_cash"])

    response = client_as("agent_manager").post(MEETING_URL, {}, format="json")

    assert response.status_code == 409
    assert response.json()["error"]["details"]["missing"] == ["cfo_cash"]
    assert not Meeting.objects.exists()


def test_async_meeting_answers_202_at_once(client_as, board):
    response = client_as("agent_manager").post(f"{MEETING_URL}?async=true", {}, format="json")

    assert response.status_code == 202
    assert response.json()["status"] == "running"
    assert Meeting.objects.get(pk=response.json()["meetingId"]).status == "running"


def test_meeting_input_is_validated(client_as, board):
    response = client_as("agent_manager").post(MEETING_URL, {"agenda": "not a list"}, format="json")

    assert response.status_code == 400


# --- Akash ----------------------------------------------------------------------------------

DEPLOY = {"name": "my-deployment", "config": {"cpu": 1, "memory": "1GB", "storage": "10GB"}}


def test_deploy_answers_in_the_specs_shape_and_renders_the_manifest(
    client_as, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as enqueued:
        response = client_as("admin").post(AKASH_URL, DEPLOY, format="json")

    body = response.json()
    assert response.status_code == 200
    assert body["success"] is True
    assert re.fullmatch(r"akash-deployment-\d{13}", body["deploymentId"])
    assert body["status"] == "initiated"
    assert body["message"] == "Deployment to Akash initiated successfully"
    assert body["config"] == DEPLOY
    assert len(enqueued) == 1  # the backend hand-off, queued for the worker on commit
    assert Deployment.objects.get(pk=body["deploymentId"]).status == "initiated"
    deployment = deployment_submit(deployment_id=body["deploymentId"])
    assert deployment.status == "manifest_ready"
    detail = client_as("admin").get(f"{AKASH_URL}/{body['deploymentId']}").json()
    assert detail["sdl"] == deployment.sdl


@pytest.mark.parametrize(
    ("config", "memory", "storage"),
    [
        ({"cpu": 1, "memory": "1GB", "storage": "10GB"}, "1G", "10G"),
        (
            {
                "cpu": 0.5,
                "memory": "512Mi",
                "storage": "1Gi",
                "count": 3,
                "port": 8080,
                "image": "ghcr.io/x/y:2",
            },
            "512Mi",
            "1Gi",
        ),
        ({"cpu": 256, "memory": "2.5G", "storage": "1TB"}, "2.5G", "1T"),
    ],
)
def test_the_sdl_has_the_required_structure(config, memory, storage):
    parsed = akash.deployment_validate({"name": "web", "config": config})

    sdl = yaml.safe_load(akash.render_sdl(parsed))

    assert sdl["version"] == "2.0"
    service = sdl["services"]["web"]
    assert service["image"] == config.get("image", "nginx:1.27")
    assert service["expose"][0]["port"] == config.get("port", 80)
    assert service["expose"][0]["to"] == [{"global": True}]
    resources = sdl["profiles"]["compute"]["web"]["resources"]
    assert resources["cpu"]["units"] == float(config["cpu"])
    assert (resources["memory"]["size"], resources["storage"]["size"]) == (memory, storage)
    pricing = sdl["profiles"]["placement"]["dcloud"]["pricing"]["web"]
    assert pricing["denom"] == "uakt" and pricing["amount"] > 0
    assert sdl["deployment"]["web"]["dcloud"] == {"profile": "web", "count": config.get("count", 1)}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**DEPLOY, "name": "Not_A_Label"}, "name"),
        ({**DEPLOY, "name": "-edge"}, "name"),
        ({"name": "ok", "config": {**DEPLOY["config"], "cpu": 0.05}}, "config.cpu"),
        ({"name": "ok", "config": {**DEPLOY["config"], "cpu": 300}}, "config.cpu"),
        ({"name": "ok", "config": {**DEPLOY["config"], "memory": "lots"}}, "config.memory"),
        ({"name": "ok", "config": {**DEPLOY["config"], "storage": "10"}}, "config.storage"),
        ({"name": "ok", "config": {**DEPLOY["config"], "count": 101}}, "config.count"),
        ({"name": "ok"}, "config"),
    ],
)
def test_invalid_deployments_are_400_in_the_specs_style(client_as, body, field):
    response = client_as("admin").post(AKASH_URL, body, format="json")

    assert response.status_code == 400
    assert response.json()["success"] is False
    assert field in response.json()["error"]["details"]
    assert not Deployment.objects.exists()


def fake_cli(tmp_path, exit_code: int) -> str:
    script = tmp_path / f"akash-{exit_code}"
    script.write_text(
        f"#!{sys.executable}\nimport sys, yaml\n"
        "sdl = yaml.safe_load(open(sys.argv[-1]))\n"
        "print('deploying', list(sdl['services']))\n"
        f"sys.exit({exit_code})\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return f"{script} tx deployment create {{sdl}}"


@pytest.mark.parametrize(("exit_code", "status"), [(0, "submitted"), (3, "failed")])
def test_cli_backend_outcome_follows_the_cli_exit_code(
    client_as, settings, tmp_path, exit_code, status
):
    settings.AKASH_BACKEND = "cli"
    settings.AKASH_CLI_COMMAND = fake_cli(tmp_path, exit_code)
    deployment_id = client_as("admin").post(AKASH_URL, DEPLOY, format="json").json()["deploymentId"]

    deployment = deployment_submit(deployment_id=deployment_id)

    assert deployment.status == status
    assert f"exit code {exit_code}" in deployment.backend_output
    assert "deploying ['my-deployment']" in deployment.backend_output


def test_deployments_are_admin_only(client_as):
    assert client_as("agent_manager").post(AKASH_URL, DEPLOY, format="json").status_code == 403
    assert client_as("system_monitor").get(AKASH_URL).status_code == 403


def test_deployment_list_and_unknown_id(client_as):
    admin = client_as("admin")
    admin.post(AKASH_URL, DEPLOY, format="json")

    assert admin.get(AKASH_URL).json()["pagination"]["total"] == 1
    assert admin.get(f"{AKASH_URL}/akash-deployment-1").status_code == 404

"""The Plugin Development workflow on the real worker, started over HTTP."""

import time

import httpx
import pytest

from agents.services import agent_create, agent_start
from system.models import EventLogEntry

pytestmark = [pytest.mark.e2e, pytest.mark.embedded]


def test_plugin_development_completes_on_the_worker(live_stack, transactional_db, make_api_key):
    for agent_type in ("cto_alex", "cpo_agent", "cmo_anova"):
        agent_start(agent=agent_create(name=agent_type, type=agent_type))
    headers = {"X-API-KEY": make_api_key(["agent_manager"])}

    started = httpx.post(
        f"{live_stack.api_url}/api/workflows",
        json={"template": "Plugin Development", "input": {"plugin": "Slack bridge"}},
        headers=headers,
    )
    assert started.status_code == 202
    workflow_url = f"{live_stack.api_url}/api/workflows/{started.json()['id']}"
    deadline = time.monotonic() + 60
    body = started.json()
    while time.monotonic() < deadline and body["status"] in ("pending", "running"):
        time.sleep(0.25)
        body = httpx.get(workflow_url, headers=headers).json()

    assert body["status"] == "completed", live_stack.log_tail()
    assert body["progress"] == 100
    assert all(step["output"] for step in body["steps"])
    progress = [
        e.payload["progress"]
        for e in EventLogEntry.objects.filter(event_type="workflow_update").order_by("event_id")
    ]
    assert progress == sorted(progress)
    assert progress[-1] == 100

"""The back office's operations in a real headless Chromium against the live stack: start an
agent with the changelist action, run a system task from the dashboard and watch the worker
finish it, and a backup that asks first. The dashboard (with live WebSocket counts, an API
error, and charts) is saved as var/test-artifacts/dashboard.png on every run.

Fixtures and helpers come from test_admin_browser (Debian's chromium through playwright).
"""

import re
import time
import uuid
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from django.utils import timezone
from websockets.sync.client import connect

from agents.models import Agent, UsageRecord
from agents.services import agent_create, agent_start
from messaging.services import message_post
from sessions_app import timeouts
from sessions_app.services import session_create
from system.kernel.principal import principal_for_user
from system.models import SystemTask
from tests.e2e.test_admin_browser import ARTIFACTS, page, staff_page  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

TASK_WAIT_SECONDS = 30


def dashboard_url(live_stack) -> str:
    return f"{live_stack.api_url}/admin/system/systemtask/dashboard/"


def test_staff_start_an_agent_from_the_agents_list(staff_page, live_stack):  # noqa: F811
    agent = agent_create(name="sage-to-start", type="clo_sage")

    staff_page.goto(f"{live_stack.api_url}/admin/agents/agent/")
    row = staff_page.locator("tr", has=staff_page.locator("a", has_text="sage-to-start"))
    assert row.locator(".agent-status-created").inner_text() == "created"
    row.locator("input.action-select").check()
    staff_page.select_option("select[name=action]", label="Start selected agents")
    staff_page.click("button[name=index]")

    staff_page.wait_for_url(f"{live_stack.api_url}/admin/agents/agent/")
    row = staff_page.locator("tr", has=staff_page.locator("a", has_text="sage-to-start"))
    assert row.locator(".agent-status-running").inner_text() == "running"
    agent.refresh_from_db()
    assert agent.status == Agent.Status.RUNNING


def test_staff_run_clear_cache_from_the_dashboard_and_see_it_succeed(
    staff_page,  # noqa: F811
    live_stack,
    make_api_key,
    make_user,
):
    key = make_api_key(["agent_manager"])
    mimi = agent_start(agent=agent_create(name="mimi-dash", type="ceo_mimi"))
    owner = make_user("dash-owner")
    session = session_create(agent=mimi, user_id="user-1", owner=owner, config=timeouts.defaults())
    for i in range(3):
        message_post(
            principal=principal_for_user(owner),
            channel=session.channel,
            sender_id="user-1",
            content=f"hello {i}",
        )
    cash = agent_start(agent=agent_create(name="cash-dash", type="cfo_cash"))
    now = timezone.now()
    for agent, cost, minutes_ago in (
        (mimi, "0.0120", 5),
        (cash, "0.0310", 20),
        (cash, "0.004", 40),
    ):
        UsageRecord.objects.create(
            agent=agent,
            agent_uuid=agent.agent_id,
            request_id=uuid.uuid4(),
            provider="builtin",
            model="builtin",
            cost_usd=Decimal(cost),
            success=True,
            created_at=now - timedelta(minutes=minutes_ago),
        )
    failed = httpx.post(
        f"{live_stack.api_url}/api/v1/agents?debug=1",
        json={"name": ""},
        headers={"Authorization": f"ApiKey {key}"},
    )
    assert failed.status_code == 400

    staff_page.goto(dashboard_url(live_stack))
    staff_page.click("#dashboard-run input[type=submit][value=clear_cache]")
    staff_page.wait_for_url(dashboard_url(live_stack))
    assert "Queued clear_cache" in staff_page.inner_text("body")
    task = SystemTask.objects.get(task_type="clear_cache")

    deadline = time.monotonic() + TASK_WAIT_SECONDS
    status_cell = staff_page.locator("#dashboard-recent-tasks tr", has_text="clear_cache").locator(
        "td"
    )
    while status_cell.nth(1).inner_text() != "succeeded" and time.monotonic() < deadline:
        time.sleep(1)
        staff_page.reload()
    assert status_cell.nth(1).inner_text() == "succeeded"
    task.refresh_from_db()
    assert task.status == SystemTask.Status.SUCCEEDED
    assert re.fullmatch(r"now|.+ ago", status_cell.nth(2).inner_text())
    assert (
        status_cell.nth(2)
        .locator("time")
        .get_attribute("title")
        .startswith(f"{task.queued_at:%Y-%m-%d}")
    )

    # Two live sockets on the stack's ws processes, then the whole page as a picture.
    ws_url = f"{live_stack.ws_url}?token={key}"
    with connect(ws_url) as first, connect(ws_url) as second:
        assert "connection_established" in first.recv(timeout=10)
        assert "connection_established" in second.recv(timeout=10)
        deadline = time.monotonic() + 15
        total = staff_page.locator("#dashboard-ws-total")
        staff_page.reload()
        while total.inner_text() != "2" and time.monotonic() < deadline:
            time.sleep(0.5)
            staff_page.reload()
        assert total.inner_text() == "2"
        assert staff_page.locator("#dashboard-api-errors", has_text="validation_error").count()
        assert "debug=1" not in staff_page.inner_text("#dashboard-api-errors")
        spend = staff_page.locator("figure.chart-spend rect.bar")
        assert [b.get_attribute("data-name") for b in spend.all()] == ["cash-dash", "mimi-dash"]
        assert staff_page.locator("figure.chart-requests rect.bar").count() == 60
        messages = staff_page.locator("figure.chart-messages rect.bar")
        assert sum(int(b.get_attribute("data-value")) for b in messages.all()) >= 3
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        staff_page.screenshot(path=ARTIFACTS / "dashboard.png", full_page=True)

    staff_page.click("text=last day")
    assert staff_page.locator("figure.chart-requests rect.bar").count() == 24
    staff_page.screenshot(path=ARTIFACTS / "dashboard-day.png", full_page=True)


def test_a_backup_asks_for_confirmation_first(staff_page, live_stack):  # noqa: F811
    staff_page.goto(dashboard_url(live_stack))
    staff_page.click("#dashboard-run input[type=submit][value=backup_database]")

    assert "Run a database backup now? It writes to BACKUP_DIR" in staff_page.inner_text(
        "#dashboard-confirm-question"
    )
    assert not SystemTask.objects.filter(task_type="backup_database").exists()
    staff_page.click("#dashboard-cancel")
    staff_page.wait_for_url(dashboard_url(live_stack))
    assert not SystemTask.objects.filter(task_type="backup_database").exists()

    staff_page.click("#dashboard-run input[type=submit][value=backup_database]")
    staff_page.click("#dashboard-confirm")
    staff_page.wait_for_url(dashboard_url(live_stack))
    assert "Queued backup_database" in staff_page.inner_text("body")
    assert SystemTask.objects.filter(task_type="backup_database").count() == 1

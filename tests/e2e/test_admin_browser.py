"""The back office in a real headless Chromium against the live stack: a staff member logs in,
adds an agent through the form, and reads the usage ledger of an agent that has been used.

Debian's `chromium` (apt-get install -y chromium; .ci/run installs it when missing) is driven
by Python playwright with `executable_path`, so no browser is downloaded. On failure the page
is saved as a screenshot under var/test-artifacts/.
"""

import re
import shutil
import uuid
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import global_settings
from django.db import connections
from django.utils import timezone
from playwright.sync_api import Page, sync_playwright

from agents.models import Agent, UsageRecord
from agents.runtime import ChatMessage
from agents.selectors import usage_day_start
from agents.services import agent_complete, agent_create, agent_start

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "test-artifacts"
STAFF_PASSWORD = "browser-staff-pw-1"


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "Debian's chromium is missing: apt-get install -y chromium"
    return path


@pytest.fixture
def page(request, monkeypatch, transactional_db) -> Iterator[Page]:
    # Playwright's sync API runs its event loop on this thread; Django then refuses ORM calls
    # unless told that this (single-threaded, test-only) use is safe.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    failed_before = request.session.testsfailed
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(15_000)
        try:
            yield page
        finally:
            # The call phase is reported before teardown: a failure is counted by now.
            if request.session.testsfailed > failed_before:
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=ARTIFACTS / f"{request.node.name}.png", full_page=True)
            browser.close()
            # The ORM connections this test opened while playwright's loop ran belong to that
            # context: close them here, or the test database cannot be dropped at the end.
            connections.close_all()


@pytest.fixture
def staff_page(page, live_stack, transactional_db, make_user, settings) -> Page:
    """The page, logged in to the admin as a superuser (password hashed as the stack hashes)."""
    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS
    make_user("staff-browser", password=STAFF_PASSWORD, is_staff=True, is_superuser=True)
    page.goto(f"{live_stack.api_url}/admin/login/")
    page.fill("input[name=username]", "staff-browser")
    page.fill("input[name=password]", STAFF_PASSWORD)
    page.click("[type=submit]")
    page.wait_for_url(f"{live_stack.api_url}/admin/")
    return page


def test_staff_add_an_agent_in_the_admin(staff_page, live_stack):
    staff_page.goto(f"{live_stack.api_url}/admin/agents/agent/add/")
    assert staff_page.locator("select[name=type]").is_enabled()
    assert staff_page.input_value("input[name=model]") == "gpt-4"

    staff_page.fill("input[name=name]", "alex-from-the-browser")
    staff_page.select_option("select[name=type]", "cto_alex")
    staff_page.click("[name=_save]")

    staff_page.wait_for_url(f"{live_stack.api_url}/admin/agents/agent/")
    assert "alex-from-the-browser" in staff_page.inner_text("body")
    agent = Agent.objects.get(name="alex-from-the-browser")
    assert (agent.type, agent.config["model"]) == ("cto_alex", "gpt-4")


def test_staff_read_a_used_agents_usage_ledger(staff_page, live_stack):
    agent = agent_start(agent=agent_create(name="cash-in-use", type="cfo_cash"))
    agent_complete(agent=agent, conversation=[ChatMessage(role="user", content="Spend?")])
    record = UsageRecord.objects.get(agent=agent)

    staff_page.goto(f"{live_stack.api_url}/admin/agents/agent/{agent.pk}/change/")

    body = staff_page.inner_text("body")
    assert (
        f"1 calls (0 failed), {record.prompt_tokens} prompt + {record.completion_tokens} "
        "completion tokens" in body
    )
    cells = staff_page.locator("tr", has=staff_page.locator("td", has_text=record.provider))
    row = cells.first.locator("td").all_inner_texts()
    assert row[1:6] == [
        record.provider,
        record.model,
        str(record.prompt_tokens),
        str(record.completion_tokens),
        f"{record.cost_usd:.8f}",
    ]
    assert re.fullmatch(r"\d+", row[6]), row
    assert row[7] == "ok"


def test_staff_see_an_agents_usage_chart(staff_page, live_stack):
    """The agents list with today's figures, then the agent's page with its last 24 hours as
    an SVG bar chart. Both are saved as screenshots every run (the back office's pictures)."""
    agent = agent_start(agent=agent_create(name="cash-charted", type="cfo_cash"))
    agent_complete(agent=agent, conversation=[ChatMessage(role="user", content="Spend?")])
    now = timezone.now()
    for hours_ago, calls in ((2, 3), (5, 1), (9, 4)):
        for i in range(calls):
            UsageRecord.objects.create(
                agent=agent,
                agent_uuid=agent.agent_id,
                request_id=uuid.uuid4(),
                provider="builtin",
                model="builtin",
                cost_usd=Decimal("0.0025") * (i + 1),
                success=i != 1,
                error_code="" if i != 1 else "timeout",
                created_at=now - timedelta(hours=hours_ago),
            )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    staff_page.goto(f"{live_stack.api_url}/admin/agents/agent/")
    row = staff_page.locator("tr", has=staff_page.locator("a", has_text="cash-charted"))
    assert row.locator(".agent-status-running").inner_text() == "running"
    today = UsageRecord.objects.filter(agent=agent, created_at__gte=usage_day_start()).count()
    assert row.locator("td.field-calls_today").inner_text() == str(today)
    staff_page.set_viewport_size({"width": 1800, "height": 900})  # every column in the picture
    staff_page.screenshot(path=ARTIFACTS / "agents-list.png", full_page=True)
    staff_page.set_viewport_size({"width": 1400, "height": 1000})

    staff_page.goto(f"{live_stack.api_url}/admin/agents/agent/{agent.pk}/change/")
    chart = staff_page.locator("svg.agent-usage-chart")
    chart.scroll_into_view_if_needed()
    staff_page.screenshot(path=ARTIFACTS / "agent-usage.png", full_page=True)

    assert chart.is_visible()
    assert chart.locator("rect.bar-calls").count() == 24
    drawn = [int(bar.get_attribute("data-calls")) for bar in chart.locator("rect.bar-calls").all()]
    assert sorted(drawn)[-4:] == [1, 1, 3, 4] and sum(drawn) == 9
    tallest = chart.locator('rect.bar-calls[data-calls="4"]').bounding_box()
    assert tallest["height"] > 50  # drawn, not just present

"""The dashboard's charts over the last hour (per minute) and day (per hour): requests from
the Redis counters, messages, sessions active and LLM spend per agent from the database, each
bar carrying its bucket and count."""

import re
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from agents.models import UsageRecord
from agents.services import agent_create, agent_start
from messaging.services import message_post
from sessions_app import timeouts
from sessions_app.selectors import sessions_active_per_bucket
from sessions_app.services import session_create, session_end
from system.kernel.principal import principal_for_user

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

DASHBOARD = "/admin/system/systemtask/dashboard/"


@pytest.fixture
def superuser_client(client, make_user):
    client.force_login(make_user("chief", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def mimi():
    return agent_start(agent=agent_create(name="ceo_mimi", type="ceo_mimi"))


def _bars(page: str, chart: str) -> dict[str, str]:
    figure = re.search(rf'<figure class="dashboard-chart {chart}">.*?</figure>', page, re.S)
    assert figure, f"{chart} not drawn"
    return dict(re.findall(r'data-start="([^"]+)" data-value="([^"]+)"', figure.group(0)))


def _minute(moment) -> str:
    return moment.replace(second=0, microsecond=0).isoformat()


def _hour(moment) -> str:
    return moment.replace(minute=0, second=0, microsecond=0).isoformat()


def _session(agent, owner, *, at):
    with time_machine.travel(at, tick=False):
        return session_create(
            agent=agent, user_id="user-1", owner=owner, config=timeouts.defaults()
        )


def test_requests_per_minute_come_from_the_counters(superuser_client, client, fresh_rate_window):
    for _ in range(3):
        client.get("/healthz")
    now = timezone.now()

    page = superuser_client.get(DASHBOARD).content.decode()

    bars = _bars(page, "chart-requests")
    assert len(bars) == 60
    assert bars[_minute(now)] == "3"
    assert sum(int(v) for v in bars.values()) == 3


def test_messages_per_minute_and_per_hour(superuser_client, mimi, make_user):
    owner = make_user("owner")
    channel = _session(mimi, owner, at=timezone.now() - timedelta(hours=4)).channel
    principal = principal_for_user(owner)
    now = timezone.now()
    for ago, count in (
        (timedelta(minutes=5), 2),
        (timedelta(minutes=2), 1),
        (timedelta(hours=3), 4),
    ):
        with time_machine.travel(now - ago, tick=False):
            for i in range(count):
                message_post(
                    principal=principal, channel=channel, sender_id="user-1", content=f"m{i}"
                )

    hour = _bars(superuser_client.get(DASHBOARD).content.decode(), "chart-messages")
    day = _bars(superuser_client.get(DASHBOARD + "?range=day").content.decode(), "chart-messages")

    assert len(hour) == 60 and len(day) == 24
    assert hour[_minute(now - timedelta(minutes=5))] == "2"
    assert hour[_minute(now - timedelta(minutes=2))] == "1"
    assert sum(int(v) for v in hour.values()) == 3
    assert day[_hour(now - timedelta(hours=3))] == "4"
    assert sum(int(v) for v in day.values()) == 7


def test_sessions_active_per_bucket_counts_overlaps(mimi, make_user):
    owner = make_user("owner")
    now = timezone.now().replace(second=0, microsecond=0)
    ended = _session(mimi, owner, at=now - timedelta(minutes=10))
    with time_machine.travel(now - timedelta(minutes=4, seconds=30), tick=False):
        session_end(session=ended)
    _session(mimi, owner, at=now - timedelta(minutes=2, seconds=30))
    bounds = [now - timedelta(minutes=12 - i) for i in range(13)]  # 12 one-minute buckets

    counts = sessions_active_per_bucket(bounds=bounds)

    #            -12 -11 -10 -9 -8 -7 -6 -5 -4 -3 -2 -1
    assert counts == [0, 0, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1]


def test_sessions_active_chart_on_the_page(superuser_client, mimi, make_user):
    owner = make_user("owner")
    _session(mimi, owner, at=timezone.now() - timedelta(minutes=20))
    _session(mimi, owner, at=timezone.now() - timedelta(minutes=1))

    bars = _bars(superuser_client.get(DASHBOARD).content.decode(), "chart-sessions")

    assert bars[_minute(timezone.now())] == "2"
    assert bars[_minute(timezone.now() - timedelta(minutes=10))] == "1"
    assert bars[_minute(timezone.now() - timedelta(minutes=40))] == "0"


def test_llm_spend_per_agent_biggest_first_with_names(superuser_client, mimi):
    cash = agent_start(agent=agent_create(name="cfo_cash", type="cfo_cash"))
    now = timezone.now()
    for agent, costs, ago in (
        (mimi, ("0.01", "0.02"), timedelta(minutes=10)),
        (cash, ("0.05",), timedelta(minutes=30)),
        (cash, ("9.00",), timedelta(hours=5)),  # outside the hour, inside the day
    ):
        for cost in costs:
            UsageRecord.objects.create(
                agent=agent,
                agent_uuid=agent.agent_id,
                request_id=uuid.uuid4(),
                provider="builtin",
                model="builtin",
                cost_usd=Decimal(cost),
                success=True,
                created_at=now - ago,
            )

    hour = superuser_client.get(DASHBOARD).content.decode()
    day = superuser_client.get(DASHBOARD + "?range=day").content.decode()

    def spend(page: str) -> list[tuple[str, str]]:
        figure = re.search(r'chart-spend">.*?</figure>', page, re.S).group(0)
        return re.findall(r'data-name="([^"]+)" data-value="([^"]+)"', figure)

    assert spend(hour) == [("cfo_cash", "0.05"), ("ceo_mimi", "0.03")]
    assert spend(day) == [("cfo_cash", "9.05"), ("ceo_mimi", "0.03")]
    assert "$0.0300 · 2 calls" in hour
    assert "<strong>last day</strong>" in day


def test_an_unknown_range_falls_back_to_the_hour(superuser_client):
    response = superuser_client.get(DASHBOARD + "?range=year")

    assert response.status_code == 200
    assert response.context["range"] == "hour"
    assert len(_bars(response.content.decode(), "chart-messages")) == 60

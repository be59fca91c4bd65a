"""A meeting's claim is a lease, renewed by every saved turn: a run whose worker died is taken
over once the lease lapses (by the redelivered task or the sweep's) and resumes from the saved
transcript; a live claim is never taken, and a run that lost its claim stops speaking."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from agents.runtime import router_reload
from agents.services import agent_create, agent_start
from questflow.models import Meeting
from questflow.services import meeting_prepare
from questflow.tasks import run_meeting, sweep
from system.models import EventLogEntry
from tests.agents.llm_servers import FakeOpenAIServer
from tests.e2e.test_worker_crash import routing_file

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.embedded]

# Past the lease (the task's hard time limit, 300 s by default), within the run's time limit.
LAPSED = timedelta(minutes=8)


@pytest.fixture
def server(settings, tmp_path, monkeypatch):
    with FakeOpenAIServer() as fake:
        settings.LLM_ROUTING_PATH = routing_file(tmp_path, fake)
        monkeypatch.setenv("SLOW_KEY", "test-key")
        router_reload()
        yield fake
    settings.LLM_ROUTING_PATH = settings.BASE_DIR / "config" / "llm_routing.yaml"
    router_reload()


@pytest.fixture
def meeting(make_user):
    """CEO then CTO on one agenda item, the CEO's turn said and saved; not yet run by us."""
    for agent_type in ("ceo_mimi", "cto_alex"):
        agent_start(agent=agent_create(name=agent_type, type=agent_type))
    meeting, agents = meeting_prepare(
        participants=["CTO"], agenda=["Hiring"], topic=None, actor=make_user("chair")
    )
    ceo = str(agents[0].agent_id)
    Meeting.objects.filter(pk=meeting.pk).update(
        transcript=[
            {"agenda_item": "Hiring", "title": "CEO", "agent_id": ceo, "content": "CEO said it"}
        ]
    )
    return Meeting.objects.get(pk=meeting.pk)


def claimed(meeting: Meeting, ago: timedelta) -> None:
    """As if a run claimed it `ago` and saved its last turn then."""
    then = timezone.now() - ago
    Meeting.objects.filter(pk=meeting.pk).update(claimed_at=then, started_at=then)


def agent_ids(meeting: Meeting) -> list[str]:
    return [p["agent_id"] for p in meeting.participants]


def test_a_redelivered_task_takes_over_a_lapsed_claim_and_resumes_the_transcript(server, meeting):
    claimed(meeting, LAPSED)  # its worker died during the CTO's turn
    server.enqueue_text("CTO on hiring")
    server.enqueue_text("Hire two engineers.")

    assert run_meeting(meeting.meeting_id, agent_ids(meeting)) == "completed"

    meeting.refresh_from_db()
    assert [(t["title"], t["content"]) for t in meeting.transcript] == [
        ("CEO", "CEO said it"),
        ("CTO", "CTO on hiring"),
    ]
    assert meeting.outcomes == ["Hire two engineers."]
    assert len(server.requests) == 2  # the CEO's turn was not said again
    assert "CEO: CEO said it" in server.requests[0]["messages"][-1]["content"]
    events = EventLogEntry.objects.filter(payload__id=meeting.meeting_id)
    assert [e.payload["status"] for e in events] == ["completed"]


def test_a_live_claim_is_not_taken(server, meeting):
    claimed(meeting, timedelta(seconds=5))  # its run is speaking now

    run_meeting(meeting.meeting_id, agent_ids(meeting))

    assert server.requests == []
    assert Meeting.objects.get(pk=meeting.pk).status == "running"
    assert len(Meeting.objects.get(pk=meeting.pk).transcript) == 1


def test_the_sweep_requeues_a_meeting_whose_claim_lapsed(server, meeting, eager_celery):
    claimed(meeting, LAPSED)

    assert sweep() == "requeued 1, failed 0"  # eager: the re-queued task ran at once

    meeting.refresh_from_db()
    assert meeting.status == "completed"
    assert [t["title"] for t in meeting.transcript] == ["CEO", "CTO"]
    assert len(server.requests) == 2


def test_a_run_that_lost_its_claim_stops_speaking(server, meeting):
    claimed(meeting, LAPSED)
    server.enqueue_text("CTO, said too late", delay=1.0)

    def first_run() -> None:
        try:
            run_meeting(meeting.meeting_id, agent_ids(meeting))
        finally:
            connection.close()

    first = threading.Thread(target=first_run)
    first.start()
    deadline = time.monotonic() + 10
    while not server.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    # Meanwhile another run holds the meeting (as when the first one's lease had lapsed).
    Meeting.objects.filter(pk=meeting.pk).update(claimed_at=timezone.now())
    first.join(10)

    meeting.refresh_from_db()
    assert len(server.requests) == 1  # the first run said nothing after losing its claim
    assert [t["content"] for t in meeting.transcript] == ["CEO said it"]
    assert meeting.status == "running"

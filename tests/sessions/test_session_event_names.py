"""Every `session_update` event names what happened in `data.event`, the sweep's and lazy
expiry's included (on PostgreSQL the sweep writes its payloads in SQL: same names)."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from sessions_app import services, timeouts
from sessions_app.models import Session
from sessions_app.sweep import sessions_sweep
from system.models import EventLogEntry

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]


@pytest.fixture
def make_session(mimi, make_user):
    owner = make_user("event-names-owner")

    def make(minutes: int, **config) -> Session:
        return services.session_create(
            agent=mimi,
            user_id="u",
            owner=owner,
            config=timeouts.validate(
                {"timeoutMinutes": minutes, **config}, base=timeouts.defaults()
            ),
        )

    return make


def events_of(session: Session) -> list[str]:
    entries = EventLogEntry.objects.filter(event_type="session_update", session_id=session.pk)
    return [e.payload.get("event") for e in entries.order_by("event_id")]


def test_the_sweeps_warning_and_expiry_events_carry_data_event(make_session):
    session = make_session(10, warningThresholdMinutes=5)

    with time_machine.travel(timezone.now() + timedelta(minutes=6)):
        sessions_sweep()
    with time_machine.travel(timezone.now() + timedelta(minutes=11)):
        sessions_sweep()

    assert events_of(session) == ["created", "expiry_warning", "expired"]


def test_lazy_expiry_event_carries_data_event_expired(make_session):
    session = make_session(5)

    with time_machine.travel(timezone.now() + timedelta(minutes=6)):
        services.session_expire_if_due(session)

    assert events_of(session) == ["created", "expired"]
    assert session.status == "expired"

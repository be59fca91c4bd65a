"""The expiry sweep and its invariants, including a hypothesis state machine over the whole
session lifecycle on a controlled clock."""

import contextlib
import json
import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from sessions_app import exchange, services, timeouts
from sessions_app.models import Session
from sessions_app.sweep import expiry_payload, sessions_sweep, warning_payload
from system.kernel.exceptions import DomainError
from system.kernel.timefmt import IsoZJSONEncoder
from system.models import EventLogEntry

pytestmark = pytest.mark.embedded


def expiry_events(session_id) -> int:
    return EventLogEntry.objects.filter(
        event_type="session_update", session_id=session_id, payload__status="expired"
    ).count()


def warning_events(session_id) -> int:
    return EventLogEntry.objects.filter(
        event_type="session_update", session_id=session_id, payload__warning="expiring_soon"
    ).count()


@pytest.fixture
def make_session(mimi, make_user):
    owner = make_user("sweep-owner")

    def make(minutes: int = 30, **config) -> Session:
        merged = {"timeoutMinutes": minutes, **config}
        return services.session_create(
            agent=mimi,
            user_id="u",
            owner=owner,
            config=timeouts.validate(merged, base=timeouts.defaults()),
        )

    return make


@pytest.mark.django_db
def test_sweep_expires_due_sessions_once_and_leaves_the_others(make_session):
    due, later = make_session(5), make_session(60)

    with time_machine.travel(timezone.now() + timedelta(minutes=6)):
        first = sessions_sweep()
        second = sessions_sweep()

    due.refresh_from_db()
    later.refresh_from_db()
    assert (first.expired, second.expired) == (1, 0)
    assert (due.status, later.status) == ("expired", "active")
    assert expiry_events(due.pk) == 1
    assert expiry_events(later.pk) == 0


@pytest.mark.django_db
def test_sweep_warns_once_inside_the_warning_threshold(make_session):
    session = make_session(10, warningThresholdMinutes=5)

    with time_machine.travel(timezone.now() + timedelta(minutes=6)):
        assert sessions_sweep().warned == 1
        assert sessions_sweep().warned == 0

    event = EventLogEntry.objects.get(session_id=session.pk, payload__warning="expiring_soon")
    assert event.payload["status"] == "active"
    assert 0 < event.payload["time_remaining_ms"] <= 5 * 60_000


@pytest.mark.django_db
def test_sweep_handles_more_sessions_than_one_batch(make_session, monkeypatch):
    monkeypatch.setattr("sessions_app.sweep.BATCH", 3)
    sessions = [make_session(5) for _ in range(7)]

    with time_machine.travel(timezone.now() + timedelta(minutes=6)):
        result = sessions_sweep()

    assert result.expired == 7
    assert all(expiry_events(s.pk) == 1 for s in sessions)


@pytest.mark.django_db(transaction=True)
def test_concurrent_sweeps_emit_each_expiry_exactly_once(make_session, monkeypatch):
    monkeypatch.setattr("sessions_app.sweep.BATCH", 5)
    sessions = [make_session(5) for _ in range(40)]
    moment = timezone.now() + timedelta(minutes=6)
    results, errors = [], []

    def sweep() -> None:
        try:
            results.append(sessions_sweep(now=moment))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sum(r.expired for r in results) == 40
    assert [expiry_events(s.pk) for s in sessions] == [1] * 40


class SessionLifecycle(RuleBasedStateMachine):
    """Random operations on one session while the clock moves."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = time_machine.travel(timezone.now(), tick=False)
        self.traveller = self.clock.start()

    @initialize(
        timeout=st.integers(5, 120),
        max_duration=st.integers(5, 300),
        auto_renew=st.booleans(),
    )
    def create(self, timeout: int, max_duration: int, auto_renew: bool) -> None:
        config = timeouts.clamp(
            {"timeoutMinutes": timeout, "maxDurationMinutes": max_duration, "autoRenew": auto_renew}
        )
        self.session = services.session_create(
            agent=self.agent, user_id="u", owner=self.owner, config=config
        )
        self.was_finished = False

    def _try(self, operation) -> None:
        self.session.refresh_from_db()
        with contextlib.suppress(DomainError):  # 409/410/422 are legal outcomes here
            operation(session=self.session)
        self.session.refresh_from_db()

    @rule()
    def heartbeat(self) -> None:
        self._try(services.session_heartbeat)

    @rule()
    def renew(self) -> None:
        self._try(services.session_renew)

    @rule()
    def message(self) -> None:
        self._try(lambda session: exchange.session_message(session=session, content="status?"))

    @rule(timeout=st.integers(5, 240))
    def patch_timeout(self, timeout: int) -> None:
        def patch(session: Session) -> None:
            config = timeouts.validate(
                {"timeoutMinutes": timeout}, base=services.session_config(session)
            )
            services.session_update_timeout(session=session, config=config)

        self._try(patch)

    @rule(minutes=st.integers(0, 200))
    def advance(self, minutes: int) -> None:
        self.traveller.shift(timedelta(minutes=minutes))

    @rule()
    def sweep(self) -> None:
        sessions_sweep()
        self.session.refresh_from_db()

    @rule()
    def end(self) -> None:
        self._try(services.session_end)

    @invariant()
    def expiry_never_passes_the_max_duration(self) -> None:
        session = self.session
        assert session.expires_at <= session.created_at + timedelta(
            minutes=session.max_duration_minutes
        )

    @invariant()
    def a_finished_session_never_comes_back(self) -> None:
        finished = self.session.status != Session.Status.ACTIVE
        assert finished or not self.was_finished
        self.was_finished = finished

    @invariant()
    def expiry_is_announced_exactly_once_when_expired(self) -> None:
        expected = 1 if self.session.status == Session.Status.EXPIRED else 0
        assert expiry_events(self.session.pk) == expected
        assert warning_events(self.session.pk) <= 1

    def teardown(self) -> None:
        self.clock.stop()


@pytest.mark.django_db
def test_session_lifecycle_state_machine(mimi, make_user):
    SessionLifecycle.agent = mimi
    SessionLifecycle.owner = make_user("machine")

    run_state_machine_as_test(
        SessionLifecycle,
        settings=settings(
            max_examples=25,
            stateful_step_count=12,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


def _as_logged(payload: dict) -> dict:
    """A payload as event_emit stores it (UUIDs, and datetimes as iso_z)."""
    return json.loads(json.dumps(payload, cls=IsoZJSONEncoder))


@pytest.mark.django_db
@pytest.mark.parametrize("fraction", [0, 123_456], ids=["whole-second", "microseconds"])
def test_sweep_events_carry_the_documented_payloads(make_session, fraction):
    """The set-based path (PostgreSQL builds payloads in SQL) writes what event_emit would."""
    expiring = make_session(5)
    warned = make_session(30, warningThresholdMinutes=10)
    Session.objects.filter(pk=expiring.pk).update(context={"topic": "Q4", "turns": [1, 2]})
    moment = (timezone.now() + timedelta(minutes=25)).replace(microsecond=fraction)
    Session.objects.filter(pk=warned.pk).update(
        expires_at=moment + timedelta(minutes=4, seconds=1, microseconds=fraction // 2),
        warn_at=moment - timedelta(minutes=6),
    )
    expiring.refresh_from_db()
    warned.refresh_from_db()

    result = sessions_sweep(now=moment)

    assert (result.expired, result.warned) == (1, 1)
    expiry = EventLogEntry.objects.get(session_id=expiring.pk, payload__status="expired")
    warning = EventLogEntry.objects.get(session_id=warned.pk, payload__warning="expiring_soon")
    assert expiry.payload == _as_logged(expiry_payload(expiring, moment))
    assert warning.payload == _as_logged(warning_payload(warned, moment))
    assert warning.payload["time_remaining_ms"] == 241_000 + fraction // 2 // 1000
    # Expiry and warning change no context: the events do not copy it (it may be 1 MiB).
    assert (expiry.payload["context"], expiry.payload["context_keys"]) == ({}, [])
    assert (expiry.event_type, expiry.agent_id, expiry.owner_id) == (
        "session_update",
        expiring.agent_uuid,
        expiring.owner_id,
    )
    assert expiry.channel_id is None

"""A ws process's database reads run on several threads: one socket's slow read does not hold
up another socket's commands. PostgreSQL only (a table lock makes the read slow without any
timing); the embedded path runs the same code."""

import asyncio
import threading

import pytest
from django.db import connection, transaction

from agents.services import agent_create, agent_start
from sessions_app.models import Session
from sessions_app.services import session_create
from sessions_app.timeouts import TimeoutConfig
from tests.realtime.conftest import WAIT

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def alices_session(alice):
    agent = agent_start(agent=agent_create(name="ceo_mimi", type="ceo_mimi"))
    config = TimeoutConfig(
        timeout_minutes=30, auto_renew=True, max_duration_minutes=720, warning_threshold_minutes=5
    )
    return session_create(agent=agent, user_id="alice", owner=alice, config=config)


def blocked_on(table: str) -> bool:
    """Whether a query waits on a lock of `table` (from a thread of its own, with a
    connection of its own: not one the consumer's reads might be waiting behind)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE relation = %s::regclass AND NOT granted",
                [table],
            )
            return cursor.fetchone()[0] > 0
    finally:
        connection.close()


async def test_a_socket_waiting_on_a_slow_read_does_not_hold_up_another_sockets_command(
    connect_as, alice, alices_session
):
    slow, other = await connect_as(alice), await connect_as(alice)
    table = Session._meta.db_table
    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
            locked.set()
            release.wait(WAIT * 3)
        connection.close()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert await asyncio.to_thread(locked.wait, WAIT)
        # Watching a session reads the sessions table: this read waits on the lock.
        await slow.send(
            command="subscribe",
            event_type="session",
            filter={"session_id": str(alices_session.session_id)},
        )
        while not await asyncio.to_thread(blocked_on, table):
            await asyncio.sleep(0.02)

        reply = await other.command(command="subscribe", event_type="*")
    finally:
        release.set()
        await asyncio.to_thread(holder.join)

    assert reply["event"] == "subscribed"
    assert (await slow.receive())["event"] == "subscribed"

"""Concurrent writers commit in parallel, and no reader of the log (the realtime readers, the
REST events API) ever returns id N while a smaller id may still appear (PostgreSQL: on SQLite
writers are serialised and this cannot happen)."""

import asyncio

import psycopg
import pytest
from channels.db import database_sync_to_async
from django.db import connection, connections

from system.eventlog import watermark
from system.models import EventLogEntry
from system.realtime.log import LogWindow, log_bounds, log_entries
from tests.eventlog.writers import (
    HeldWriter,
    emit_on_own_connection,
    emit_without_blocking,
    postgresql,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not postgresql(), reason="writers in parallel: PostgreSQL only"),
]

URL = "/api/v1/system/events"


@pytest.fixture
def admin(client_as):
    return client_as("admin")


def api_ids(client, **params) -> list[int]:
    response = client.get(URL, params)
    assert response.status_code == 200, response.json()
    return [event["event_id"] for event in response.json()["events"]]


def window_ids(upto: int | None) -> tuple[list[int], int | None]:
    """A fresh process's window brought up to `upto` (a published id): its ids and end."""

    async def fill() -> tuple[list[int], int | None]:
        window = LogWindow(size=100)
        try:
            await window.cover(upto)
            return [entry.event_id for entry in window.entries], window.end
        finally:
            await database_sync_to_async(connections.close_all)()

    return asyncio.run(fill())


def every_reader(admin, *, after: int) -> dict[str, list[int]]:
    """What each reader of the log returns after `after`."""
    window, _ = window_ids(None)
    return {
        "log_entries": [e.event_id for e in log_entries(after=after, limit=100)],
        "window": [event_id for event_id in window if event_id > after],
        "api_forward": api_ids(admin, after=after),
        "api_newest_first": sorted(i for i in api_ids(admin) if i > after),
    }


def test_a_writer_commits_while_another_is_in_flight_and_readers_stop_below_it(admin):
    before = emit_on_own_connection()
    first = HeldWriter(event_type="session_update")
    a_id = first.start()
    try:
        # With a platform-wide lock this second writer waits for the first one's commit.
        b_id = emit_without_blocking()
        assert a_id < b_id
        assert EventLogEntry.objects.filter(event_id=b_id).exists()  # committed, visible

        assert before <= watermark.read() < a_id
        assert log_bounds()[1] < a_id
        assert every_reader(admin, after=before) == every_reader_saying()
        # A live message announcing b_id reaches no further than the watermark.
        ids, end = window_ids(b_id)
        assert b_id not in ids and end is not None and end < a_id
    finally:
        first.end(commit=True)

    assert watermark.read() >= b_id
    assert log_bounds()[1] >= b_id
    assert every_reader(admin, after=before) == every_reader_saying(a_id, b_id)
    ids, end = window_ids(b_id)
    assert ids[-2:] == [a_id, b_id] and end is not None and end >= b_id


def test_a_rolled_back_writer_in_flight_holds_back_the_later_commit_until_it_ends(admin):
    before = emit_on_own_connection()
    first = HeldWriter()
    try:
        a_id = first.start()
        b_id = emit_without_blocking()
        assert a_id < b_id
        assert watermark.read() < a_id
        assert every_reader(admin, after=before) == every_reader_saying()
    finally:
        first.end(commit=False)

    assert not EventLogEntry.objects.filter(event_id=a_id).exists()
    assert watermark.read() >= b_id
    assert every_reader(admin, after=before) == every_reader_saying(b_id)


def test_in_flight_keys_above_32_bits_are_read_back_whole(admin):
    """pg_locks splits a bigint key in two 32-bit halves: a writer registered at a last
    value beyond 2^32 bounds the watermark at exactly that value."""
    table = EventLogEntry._meta.db_table
    high = (1 << 33) + 12345
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'event_id')", [table])
        sequence = cursor.fetchone()[0]
        cursor.execute("SELECT setval(%s, %s)", [sequence, high])
    first = HeldWriter()
    try:
        a_id = first.start()
        b_id = emit_without_blocking()
        assert high < a_id < b_id
        assert watermark.read() == high
        assert api_ids(admin, after=high) == []
    finally:
        first.end(commit=True)
    assert watermark.read() == b_id
    assert api_ids(admin, after=high) == [a_id, b_id]


def test_writers_in_flight_in_another_database_do_not_hold_this_one_back():
    """pg_locks lists the locks of every database on the server: only this one's count."""
    emit_on_own_connection()
    settings = connection.settings_dict
    params = {
        "host": settings["HOST"] or None,
        "port": settings["PORT"] or None,
        "user": settings["USER"] or None,
        "password": settings["PASSWORD"] or None,
    }
    # A writer of an empty log (in-flight key 0) in the server's maintenance database.
    with psycopg.connect(dbname="postgres", **params) as other:
        other.execute("SELECT pg_advisory_xact_lock_shared(%s)", [watermark.IN_FLIGHT])
        assert watermark.read() > 0
    # The same in this database holds every reader back to 0.
    with psycopg.connect(dbname=settings["NAME"], **params) as here:
        here.execute("SELECT pg_advisory_xact_lock_shared(%s)", [watermark.IN_FLIGHT])
        assert watermark.read() == 0
    assert watermark.read() > 0


def every_reader_saying(*ids: int) -> dict[str, list[int]]:
    return {
        reader: list(ids) for reader in ("log_entries", "window", "api_forward", "api_newest_first")
    }

"""Every PostgreSQL backend of the stack terminated (`pg_terminate_backend`) mid-traffic, on the
real processes: at most the requests in flight fail; the next request on every process, the
api's threads, both ws processes and the worker, is served."""

import asyncio
import os
from collections.abc import Iterator

import httpx
import psutil
import psycopg
import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from messaging.models import Message
from tests.e2e.conftest import LiveStack, run_stack
from tests.e2e.faults import Listener, Traffic, keep_log, serving_process, wait_until
from tests.e2e.test_faults_redis import world  # noqa: F401 - a fixture

pytestmark = [pytest.mark.e2e]

WAIT = 60
API_THREADS = 8  # granian's blocking threads: each holds its own connection


@pytest.fixture
def stack(transactional_db, tmp_path, request) -> Iterator[LiveStack]:
    (tmp_path / "stack").mkdir()
    with (
        keep_log(request.node.name, tmp_path / "stack" / "stack.log"),
        run_stack(tmp_path / "stack", GRANIAN_BLOCKING_THREADS=str(API_THREADS)) as live,
    ):
        yield live


def terminate_every_backend_but_ours() -> int:
    """pg_terminate_backend on every client backend of the test database, except those of
    this test process (its client ports are known)."""
    ours = {
        c.laddr.port for c in psutil.Process(os.getpid()).net_connections(kind="tcp") if c.raddr
    }
    settings = connection.settings_dict
    with psycopg.connect(
        host=settings["HOST"] or "127.0.0.1",
        port=settings["PORT"] or 5432,
        user=settings["USER"],
        password=settings["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    ) as admin:
        rows = admin.execute(
            "SELECT pid, client_port FROM pg_stat_activity "
            "WHERE datname = %s AND backend_type = 'client backend'",
            [settings["NAME"]],
        ).fetchall()
        pids = [pid for pid, port in rows if port not in ours]
        for pid in pids:
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    return len(pids)


async def sockets_on_each_process(stack: LiveStack, keys, channels) -> dict[int, Listener]:
    """Open sockets until each of the two daphne processes serves one."""
    by_process: dict[int, Listener] = {}
    extra = []
    for i in range(40):
        listener = await Listener.open(stack.ws_url, keys[i % len(keys)], channels)
        pid = serving_process(stack, listener.ws)
        if pid in by_process:
            extra.append(listener)
        else:
            by_process[pid] = listener
        if len(by_process) == 2:
            break
    for listener in extra:
        await listener.close()
    assert len(by_process) == 2
    return by_process


@sync_to_async
def replies_to(message_ids: list[str]) -> int:
    try:
        return Message.objects.filter(in_reply_to_id__in=message_ids).count()
    finally:
        connection.close()  # this runs on a thread of asgiref's: leave no connection behind


async def test_every_backend_terminated_mid_traffic_fails_at_most_what_was_in_flight(
    stack,
    world,  # noqa: F811 - the fixture
):
    channels = [world["quiet"], world["exec"]]
    before = await sockets_on_each_process(stack, world["keys"], channels)
    traffic = Traffic(stack.api_url, world["admin"], channels, interval=0.05)
    stop = asyncio.Event()
    poster = asyncio.create_task(traffic.run(stop))
    await asyncio.sleep(3)  # every api thread, both ws processes and the worker hold one

    terminated = await asyncio.to_thread(terminate_every_backend_but_ours)
    traffic.phase = "after"
    await asyncio.sleep(2)
    stop.set()
    await poster

    async with httpx.AsyncClient(base_url=stack.api_url, timeout=WAIT) as client:
        reads = await asyncio.gather(
            *(
                client.get(
                    f"/api/v1/channels/{world['quiet']}/messages",
                    headers={"X-API-KEY": world["admin"]},
                )
                for _ in range(3 * API_THREADS)
            )
        )
        after = await sockets_on_each_process(stack, world["keys"], channels)
        marker = await traffic.post(client, world["exec"], "marker")

    assert terminated >= 4, "the api, the two ws processes and the worker each held one"
    # One post is in flight at any time: at most it fails.
    assert len(traffic.failed()) <= 1, traffic.failed()
    assert [r.status_code for r in reads] == [200] * len(reads)
    assert marker.status == 201
    for listener in [*before.values(), *after.values()]:
        await wait_until(
            lambda listener=listener: _true(marker.message_id in listener.received),
            WAIT,
            lambda listener=listener: _true(f"not delivered; socket: {listener.closed}"),
        )
    asked = [p.message_id for p in traffic.posts if p.channel == world["exec"] and p.message_id]
    await wait_until(
        lambda: _at_least(replies_to, [*asked, marker.message_id], len(asked) + 1),
        WAIT,
        lambda: _describe_replies([*asked, marker.message_id]),
    )
    for listener in [*before.values(), *after.values()]:
        assert listener.duplicates() == []
        await listener.close()


async def _true(value):
    return value


async def _at_least(query, ids, count) -> bool:
    return await query(ids) >= count


async def _describe_replies(ids) -> str:
    return f"{await replies_to(ids)} of {len(ids)} agent replies"

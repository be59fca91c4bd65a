"""Redis killed, or frozen, under steady traffic, on the real stack (api, ws, worker, beat) with
a Redis of the test's own: the API keeps answering, and nothing committed is lost or delivered
twice once Redis is back.

Before the kill/freeze, during it and after it, messages are posted every 0.2 s to a channel
without agents and to one whose running agent answers (its reply is queued work on the
broker); sockets subscribed to both channels record every message event they receive.
The own Redis keeps its data across the kill (append-only file, synced on every write), except
in the last test, where it comes back empty with work still queued on it.
"""

import asyncio
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from agents.services import agent_create, agent_start
from messaging.models import Message
from messaging.services import channel_create
from questflow.models import Deployment, Workflow
from tests.agents.llm_servers import FakeOpenAIServer
from tests.e2e.conftest import LiveStack, run_stack
from tests.e2e.faults import Listener, RedisServer, Traffic, keep_log, wait_until
from tests.e2e.test_worker_crash import routing_file
from tests.questflow.test_meetings_and_deployments import DEPLOY

pytestmark = [pytest.mark.e2e]

SOCKETS = 40  # over 8 users, spread by the kernel over the two daphne processes
OUTAGE = 8.0  # seconds Redis is down
FREEZE = 30.0  # seconds the broker does not answer
WAIT = 90
QUEUED = 8  # agent replies queued behind a busy worker


@pytest.fixture
def own_redis(tmp_path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@contextmanager
def stack_on(redis_server: RedisServer, tmp_path: Path, name: str, **env: str):
    (tmp_path / "stack").mkdir()
    with (
        keep_log(name, tmp_path / "stack" / "stack.log"),
        run_stack(tmp_path / "stack", REDIS_URL=redis_server.url, **env) as live,
    ):
        yield live


@pytest.fixture
def stack(transactional_db, own_redis, tmp_path, request) -> Iterator[LiveStack]:
    with stack_on(own_redis, tmp_path, request.node.name) as live:
        yield live


@pytest.fixture
def world(transactional_db, make_user, make_api_key):
    """An admin key that posts; messaging keys of 8 users; a quiet channel and one whose
    running agent (ceo_mimi) answers every message."""
    ops = make_user("ops")
    agent_start(agent=agent_create(name="ceo_mimi", type="ceo_mimi"))
    return {
        "admin": make_api_key(["admin"], owner=ops),
        "keys": [make_api_key(["messaging"], owner=make_user(f"u{i}")) for i in range(8)],
        "quiet": str(channel_create(name="quiet", type="public", members=[], actor=ops).pk),
        "exec": str(channel_create(name="exec", type="public", members=["ceo_mimi"], actor=ops).pk),
    }


def _messages(channels: list[str]) -> list[tuple[str, str, str | None]]:
    try:
        return [
            (str(m), str(c), str(r) if r else None)
            for m, c, r in Message.objects.filter(channel_id__in=channels).values_list(
                "message_id", "channel_id", "in_reply_to_id"
            )
        ]
    finally:
        connection.close()  # this runs on a thread of asgiref's: leave no connection behind


messages = sync_to_async(_messages)


async def open_listeners(stack: LiveStack, world) -> list[Listener]:
    channels = [world["quiet"], world["exec"]]
    return [
        await Listener.open(stack.ws_url, world["keys"][i % len(world["keys"])], channels)
        for i in range(SOCKETS)
    ]


async def everything_delivered(listeners: list[Listener], world, traffic: Traffic) -> None:
    """One reply to each message posted to the agent's channel arrives, and every message in
    both channels reaches every socket, once. The sockets are checked even when replies are
    missing, so that a failure shows every fault at once."""
    channels = [world["quiet"], world["exec"]]
    asked = {p.message_id for p in traffic.posts if p.channel == world["exec"] and p.message_id}

    async def replied() -> set[str]:
        return {r for _m, _c, r in await messages(channels) if r}

    async def all_replied() -> bool:
        return asked <= await replied()

    async def delivered() -> bool:
        ids = {m for m, _c, _r in await messages(channels)}
        return all(listener.has(ids) for listener in listeners)

    async def describe_sockets() -> str:
        ids = {m for m, _c, _r in await messages(channels)}
        short = [len(ids - set(listener.received)) for listener in listeners]
        closed = {listener.closed for listener in listeners if listener.closed}
        return f"events missing per socket: {short}; sockets closed: {closed}"

    missing_replies = ""
    try:
        await wait_until(all_replied, WAIT, lambda: _describe(asked, replied))
    except pytest.fail.Exception as exc:
        missing_replies = str(exc)
    await wait_until(delivered, WAIT, describe_sockets)
    for listener in listeners:
        assert listener.duplicates() == [], "an event reached a socket twice"
        assert listener.closed is None
    assert not missing_replies, missing_replies
    replies = Counter(r for _m, _c, r in await messages(channels) if r)
    assert all(replies[a] == 1 for a in asked), "an agent answered a message twice"


async def _describe(asked: set[str], replied) -> str:
    return f"{len(asked - await replied())} of {len(asked)} agent replies missing"


async def test_redis_killed_and_restarted_under_traffic_loses_nothing(stack, own_redis, world):
    listeners = await open_listeners(stack, world)
    traffic = Traffic(stack.api_url, world["admin"], [world["quiet"], world["exec"]])
    stop = asyncio.Event()
    poster = asyncio.create_task(traffic.run(stop))
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as client:
        await asyncio.sleep(2)

        own_redis.kill()
        traffic.phase = "down"
        await asyncio.sleep(1.5)  # /readyz answers from a 1 s cache
        ready = await client.get("/readyz")
        status = await client.get("/api/v1/system/status", headers={"X-API-KEY": world["admin"]})
        login = await client.post(
            "/api/v1/auth/token", json={"username": "ops", "password": "pw-123456!"}
        )
        await asyncio.sleep(OUTAGE - 1.5)

        own_redis.start()
        traffic.phase = "after"
        await asyncio.sleep(3)
        stop.set()
        await poster
        final = await client.get("/readyz")

    assert ready.status_code == 503, ready.text
    assert status.status_code == 200, status.text
    assert status.json()["status"] == "degraded", status.json()
    # Logins fail closed while their attempts cannot be counted; everything else fails open.
    assert login.status_code == 429, login.text
    assert login.json()["error"]["details"]["reason"] == "rate_limiter_unavailable"
    assert final.status_code == 200, final.text
    assert [p.phase for p in traffic.posts].count("down") >= 10
    assert traffic.failed() == []
    await everything_delivered(listeners, world, traffic)
    for listener in listeners:
        await listener.close()


@sync_to_async
def _finished(workflow_id: str, deployment_id: str) -> tuple[str, str]:
    try:
        return (
            Workflow.objects.get(pk=workflow_id).status,
            Deployment.objects.get(pk=deployment_id).status,
        )
    finally:
        connection.close()


@pytest.fixture
def builders(transactional_db):
    """The agents of the "Plugin Development" workflow template."""
    for agent_type in ("cto_alex", "cpo_agent", "cmo_anova"):
        agent_start(agent=agent_create(name=agent_type, type=agent_type))


async def test_broker_not_answering_for_a_while_delays_queued_work_and_loses_none(
    stack, own_redis, world, builders
):
    """Redis frozen (SIGSTOP: connections stay open, nothing answers, as in a network
    partition) for FREEZE seconds while messages are posted to the agent's channel and a
    workflow and a deployment are started: every post answers 201, and every agent reply, the
    workflow and the deployment's hand-off to the worker happen once the broker is back."""
    listeners = await open_listeners(stack, world)
    traffic = Traffic(stack.api_url, world["admin"], [world["exec"]], interval=0.5)
    stop = asyncio.Event()
    poster = asyncio.create_task(traffic.run(stop))
    await asyncio.sleep(1)
    own_redis.freeze()
    traffic.phase = "frozen"
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as client:
        headers = {"X-API-KEY": world["admin"]}
        workflow = await client.post(
            "/api/workflows", json={"template": "Plugin Development", "input": {}}, headers=headers
        )
        deployment = await client.post("/api/deploy/akash", json=DEPLOY, headers=headers)
    await asyncio.sleep(FREEZE)
    own_redis.thaw()
    traffic.phase = "after"
    await asyncio.sleep(2)
    stop.set()
    await poster

    assert [p.phase for p in traffic.posts].count("frozen") >= 3
    assert traffic.failed() == []
    assert workflow.status_code == 202, workflow.text
    assert deployment.status_code == 200, deployment.text
    await wait_until(
        lambda: _is(
            _finished(workflow.json()["id"], deployment.json()["deploymentId"]),
            ("completed", "manifest_ready"),
        ),
        WAIT,
        lambda: _describe_finished(workflow.json()["id"], deployment.json()["deploymentId"]),
    )
    await everything_delivered(listeners, world, traffic)
    for listener in listeners:
        await listener.close()


async def _is(awaitable, expected) -> bool:
    return await awaitable == expected


async def _describe_finished(workflow_id: str, deployment_id: str) -> str:
    workflow, deployment = await _finished(workflow_id, deployment_id)
    return f"workflow {workflow}, deployment {deployment}"


@pytest.fixture
def empty_on_restart(tmp_path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis", persist=False)
    server.start()
    yield server
    server.stop()


@sync_to_async
def _replied(message_ids: set[str]) -> Counter:
    try:
        return Counter(
            str(r)
            for r in Message.objects.filter(in_reply_to_id__in=message_ids).values_list(
                "in_reply_to_id", flat=True
            )
        )
    finally:
        connection.close()


async def test_redis_restarted_empty_loses_no_queued_agent_reply(
    transactional_db, empty_on_restart, world, tmp_path, request
):
    """Replies queued on the broker and not yet taken by the (busy) worker when Redis dies
    and comes back empty: each still arrives, once. The broker is a transport, not the record
    of the work."""
    with FakeOpenAIServer() as llm:
        for n in range(QUEUED):
            llm.enqueue_text(f"reply {n}", delay=1.0)  # one a second: the queue builds up
        with stack_on(
            empty_on_restart,
            tmp_path,
            request.node.name,
            LLM_ROUTING_PATH=str(routing_file(tmp_path, llm)),
            SLOW_KEY="test-key",
            WORKER_CONCURRENCY="1",
        ) as live:
            traffic = Traffic(live.api_url, world["admin"], [world["exec"]])
            async with httpx.AsyncClient(base_url=live.api_url, timeout=30) as client:
                posts = [
                    await traffic.post(client, world["exec"], f"question {n}")
                    for n in range(QUEUED)
                ]
            assert [p.status for p in posts] == [201] * QUEUED
            asked = {p.message_id for p in posts}

            async def working() -> bool:
                return len(llm.requests) >= 1

            async def all_replied() -> bool:
                return set(await _replied(asked)) == asked

            async def lost() -> str:
                missing = asked - set(await _replied(asked))
                return f"{len(missing)} of {len(asked)} queued agent replies lost"

            await wait_until(working, WAIT, lost)
            empty_on_restart.kill()  # the worker busy with the first, the rest queued
            await asyncio.sleep(1)
            empty_on_restart.start()
            await wait_until(all_replied, WAIT, lost)

    assert set((await _replied(asked)).values()) == {1}

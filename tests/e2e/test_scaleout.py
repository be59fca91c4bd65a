"""The production shape on one machine: 2 api + 2 ws + 2 worker + 1 beat, each started on its
own with the Procfile's command (as a supervisor starts them, bench/stack.py's way), all on the
test's PostgreSQL database and one Redis DB. Under steady traffic through both apis, one of each
(api, ws, worker) is SIGKILLed; the worker is restarted, as a supervisor would, and the sockets
of the killed ws process reconnect to the other one with ?last_event_id=. Nothing is lost:
every committed message event reaches every socket once and in event-id order, every post
answered 201 is answered by the agent once, and the outbox ends empty.
"""

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import psutil
import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from bench.stack import procfile
from system.devserver.embedded_redis import free_ports
from system.models import OutboxMessage
from tests.agents.llm_servers import FakeOpenAIServer
from tests.e2e.conftest import BASE_DIR, database_url_for_tests
from tests.e2e.faults import Listener, Traffic, keep_log, wait_until
from tests.e2e.test_faults_redis import world  # noqa: F401 - the fixture
from tests.e2e.test_worker_crash import routing_file

pytestmark = [pytest.mark.e2e]

SOCKETS = 12  # half on each ws process
INTERVAL = 0.4  # per api: a post every 0.2 s in all, each answered by the agent
WAIT = 60
WORKER_HOSTNAME = "worker@%h"
LLM_SECONDS = 0.3  # each agent reply waits this long on the (fake) LLM: a kill finds one running
VISIBILITY_TIMEOUT = 3  # after which the killed worker's unacknowledged task returns
RECONNECT_AFTER = 1.0  # the killed ws process's clients back off: events go by meanwhile


class Processes:
    """Procfile entries started one by one under `bash -c` (as honcho and bench/stack.py run
    them), each in a session of its own with its output in <name>.log; SIGKILLed (the whole
    session: granian's workers, celery's pool) or stopped with SIGTERM at the end."""

    def __init__(self, log_dir: Path, env: dict[str, str]) -> None:
        self.log_dir, self.env = log_dir, env
        self.commands = procfile()
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, entry: str, **env: str) -> None:
        command = self.commands[entry]
        if entry == "worker":  # two workers on one host need hostnames of their own
            assert WORKER_HOSTNAME in command, command
            command = command.replace(WORKER_HOSTNAME, f"{name}@%h")
        with (self.log_dir / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                ["bash", "-c", command],
                cwd=BASE_DIR,
                env={**self.env, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.running[name] = process
        self.started.append(process)

    def kill(self, name: str) -> None:
        process = self.running.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)

    def log(self, name: str) -> str:
        return (self.log_dir / f"{name}.log").read_text(errors="replace")

    def tails(self, lines: int = 15) -> str:
        return "\n".join(
            f"--- {path.stem}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            for path in sorted(self.log_dir.glob("*.log"))
        )

    def check_alive(self) -> None:
        exited = {n: p.returncode for n, p in self.running.items() if p.poll() is not None}
        assert not exited, f"{exited} exited:\n{self.tails()}"

    def stop(self) -> None:
        """SIGTERM to every process still running; none may be left behind."""
        children: list[psutil.Process] = []
        for process in self.started:
            with contextlib.suppress(psutil.NoSuchProcess):
                children += psutil.Process(process.pid).children(recursive=True)
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.started:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        _gone, alive = psutil.wait_procs(children, timeout=10)
        for leftover in alive:
            leftover.kill()
        assert not alive, f"processes left behind: {alive}\n{self.tails()}"


def running_a_reply(processes: Processes, name: str) -> bool:
    """The worker's last agent reply was received and has not finished."""
    lines = [line for line in processes.log(name).splitlines() if "messaging.agent_reply[" in line]
    return bool(lines) and lines[-1].endswith(" received")


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_ready(processes: Processes, api_urls: list[str], ws_ports: list[int]) -> None:
    def ready() -> bool:
        try:
            if any(httpx.get(f"{url}/readyz", timeout=2).status_code != 200 for url in api_urls):
                return False
        except httpx.TransportError:
            return False
        workers = [n for n in processes.running if n.startswith("worker")]
        return all(port_open(port) for port in ws_ports) and all(
            " ready." in processes.log(name) for name in workers
        )

    deadline = time.monotonic() + WAIT
    while not ready():
        processes.check_alive()
        if time.monotonic() > deadline:
            pytest.fail(f"the processes were not ready within {WAIT}s:\n{processes.tails()}")
        time.sleep(0.25)


@pytest.fixture
def scaled_out(transactional_db, tmp_path, request):
    """2 api + 2 ws + 2 worker + 1 beat; yields (processes, api urls, ws urls)."""
    api_ports, ws_ports = free_ports(2), free_ports(2)
    (tmp_path / "static").mkdir()
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_tests(),
        "VAR_DIR": str(tmp_path),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "WEB_CONCURRENCY": "1",
        "WS_CONCURRENCY": "1",  # one daphne per ws entry: a ws process is one entry here
        "WORKER_CONCURRENCY": "1",
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
        "OUTBOX_SWEEP_SECONDS": "2",
    }
    processes = Processes(tmp_path, env)
    with contextlib.ExitStack() as logs:
        llm = logs.enter_context(FakeOpenAIServer())
        for n in range(500):
            llm.enqueue_text(f"reply {n}", delay=LLM_SECONDS)
        env.update(LLM_ROUTING_PATH=str(routing_file(tmp_path, llm)), SLOW_KEY="test-key")
        for name in ("api1", "api2", "ws1", "ws2", "worker1", "worker2", "beat"):
            logs.enter_context(keep_log(f"{request.node.name}-{name}", tmp_path / f"{name}.log"))
        try:
            for n in (1, 2):
                processes.start(f"api{n}", "api", API_PORT=str(api_ports[n - 1]))
                processes.start(f"ws{n}", "ws", WS_PORT=str(ws_ports[n - 1]))
                processes.start(f"worker{n}", "worker")
            processes.start("beat", "beat")
            api_urls = [f"http://127.0.0.1:{port}" for port in api_ports]
            wait_ready(processes, api_urls, ws_ports)
            yield processes, api_urls, [f"ws://127.0.0.1:{port}/v1/ws" for port in ws_ports]
            processes.check_alive()
        finally:
            processes.stop()


@sync_to_async
def committed(channel: str) -> dict[str, str | None]:
    """message id -> the message it answers, for every message of `channel`."""
    from messaging.models import Message

    try:
        return {
            str(m): (str(r) if r else None)
            for m, r in Message.objects.filter(channel_id=channel).values_list(
                "message_id", "in_reply_to_id"
            )
        }
    finally:
        connection.close()  # this runs on a thread of asgiref's: leave no connection behind


@sync_to_async
def outbox_left() -> int:
    try:
        return OutboxMessage.objects.count()
    finally:
        connection.close()


async def reconnect(listener: Listener, ws_url: str, key: str, channel: str) -> Listener:
    """The client of a killed ws process: reconnect (to the other one, as a load balancer
    would route it) from the last event it saw."""
    await asyncio.wait_for(listener.task, WAIT)
    seen = listener.event_ids[-1] if listener.event_ids else listener.hello["data"]["last_event_id"]
    return await Listener.open(ws_url, key, [channel], last_event_id=seen)


async def test_two_of_each_process_with_one_of_each_killed_lose_nothing(
    scaled_out,
    world,  # noqa: F811
):
    processes, api_urls, ws_urls = scaled_out
    channel, keys = world["exec"], world["keys"]
    sockets = [
        # (ws index, key, connections in order: the first, then its resumption)
        (
            i % 2,
            keys[i % len(keys)],
            [await Listener.open(ws_urls[i % 2], keys[i % len(keys)], [channel])],
        )
        for i in range(SOCKETS)
    ]
    traffic = [Traffic(url, world["admin"], [channel], interval=INTERVAL) for url in api_urls]
    stops = [asyncio.Event(), asyncio.Event()]
    posters = [asyncio.create_task(traffic[0].run(stops[0]))]
    await asyncio.sleep(INTERVAL / 2)  # the apis take turns
    posters.append(asyncio.create_task(traffic[1].run(stops[1])))
    await asyncio.sleep(3)

    async def worker1_busy() -> bool:
        return running_a_reply(processes, "worker1")

    async def worker1_idle() -> str:
        return "worker1 never ran an agent reply"

    await wait_until(worker1_busy, WAIT, worker1_idle)
    processes.kill("worker1")
    # The supervisor restarts it (after 4 s, as RestartSec=4 would): the replacement takes back the
    # unacknowledged reply once the broker's visibility timeout has passed.
    await asyncio.sleep(VISIBILITY_TIMEOUT + 1)
    processes.start("worker1", "worker")
    await asyncio.sleep(2)

    processes.kill("ws1")
    await asyncio.sleep(RECONNECT_AFTER)
    for index, key, connections in sockets:
        if index == 0:
            connections.append(await reconnect(connections[-1], ws_urls[1], key, channel))
    await asyncio.sleep(2)

    processes.kill("api1")
    await asyncio.sleep(1)
    stops[0].set()
    await asyncio.sleep(2)
    stops[1].set()
    await asyncio.gather(*posters)

    posts = [p for t in traffic for p in t.posts]
    answered = {p.message_id for p in posts if p.status == 201}
    assert len([p for p in traffic[1].posts if p.status == 201]) >= 10
    assert [p for p in traffic[1].posts if p.status != 201] == []

    async def replies() -> Counter:
        return Counter(r for r in (await committed(channel)).values() if r)

    async def all_answered() -> bool:
        return answered <= set(await replies())

    async def unanswered() -> str:
        missing = answered - set(await replies())
        return f"{len(missing)} of {len(answered)} posts not answered\n{processes.tails()}"

    await wait_until(all_answered, WAIT, unanswered)

    async def delivered() -> bool:
        ids = set(await committed(channel))
        return all(ids <= {m for c in conns for m in c.received} for _i, _k, conns in sockets)

    async def undelivered() -> str:
        ids = set(await committed(channel))
        short = [len(ids - {m for c in conns for m in c.received}) for _i, _k, conns in sockets]
        return f"events missing per socket: {short}"

    await wait_until(delivered, WAIT, undelivered)

    async def outbox_empty() -> bool:
        return await outbox_left() == 0

    async def outbox_describe() -> str:
        return f"{await outbox_left()} outbox messages left"

    await wait_until(outbox_empty, WAIT, outbox_describe)

    replied = await replies()
    assert all(replied[m] == 1 for m in answered), "a post was answered twice"
    every = set(await committed(channel))
    for index, _key, connections in sockets:
        received = [m for c in connections for m in c.received]
        event_ids = [e for c in connections for e in c.event_ids]
        assert Counter(received) == Counter(every), "an event missed or twice"
        assert event_ids == sorted(event_ids), "events out of event-id order"
        assert len(connections) == (2 if index == 0 else 1)
        assert connections[-1].closed is None
    for _index, _key, connections in sockets:
        await connections[-1].close()

"""The whole stack, started as `make run` starts it, over real sockets."""

import signal
import socket

import httpx
import pytest
import redis

from system.devserver.embedded_redis import free_port
from system.kernel.tasks import ping
from tests.e2e.conftest import run_stack

pytestmark = [pytest.mark.e2e, pytest.mark.embedded]


def test_stack_is_ready_and_runs_a_task_through_the_real_worker(live_stack):
    ready = httpx.get(f"{live_stack.api_url}/readyz", timeout=5)

    assert ready.status_code == 200
    assert ping.apply_async().get(timeout=60) == "pong"


def test_api_port_answers_426_with_the_websocket_url_on_the_websocket_path(live_stack):
    response = httpx.get(f"{live_stack.api_url}/v1/ws", timeout=5)

    assert response.status_code == 426
    assert response.json()["error"]["details"]["websocket_url"] == live_stack.ws_url


def test_admin_static_files_are_served_by_the_api_process(live_stack):
    response = httpx.get(f"{live_stack.api_url}/static/admin/css/base.css", timeout=5)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")


def test_without_redis_url_the_stack_runs_its_own_redis_and_ctrl_c_stops_everything(
    transactional_db, tmp_path
):
    port = free_port()

    with run_stack(tmp_path, signal.SIGINT, REDIS_URL=None, EMBEDDED_REDIS_PORT=str(port)) as stack:
        assert httpx.get(f"{stack.api_url}/readyz", timeout=5).json()["checks"]["redis"]["ok"]
        assert redis.Redis(port=port).ping()

    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0, "embedded Redis still listening"

"""The kernel's Redis client fails fast for a moment after a call could not reach Redis, so a
Redis that stops answering (a partition, a frozen server) costs one timeout per moment per
process, not one per call of every request."""

import socket
import threading
import time

import pytest
import redis

from system.kernel.ratelimit import rate_limit_hit
from system.kernel.redis_client import get_redis

pytestmark = pytest.mark.embedded


class SilentServer:
    """A TCP server that accepts connections and reads what it is sent, never answering: a
    Redis that stopped responding. Counts the bytes received."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.received = 0
        self.connections: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(conn)
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        while True:
            try:
                data = conn.recv(65536)
            except OSError:
                return
            if not data:
                return
            self.received += len(data)

    def close(self) -> None:
        self.sock.close()
        for conn in self.connections:
            conn.close()


@pytest.fixture
def silent_redis(settings):
    server = SilentServer()
    settings.REDIS_URL = f"redis://127.0.0.1:{server.port}/0"
    settings.REDIS_BREAKER_SECONDS = 0.3
    yield server
    server.close()


def test_after_a_timeout_the_next_calls_fail_at_once_without_asking_redis(silent_redis):
    with pytest.raises(redis.TimeoutError):
        get_redis().get("371os:x")
    asked = silent_redis.received
    assert asked > 0

    with pytest.raises(redis.ConnectionError):
        get_redis().get("371os:x")
    pipe = get_redis().pipeline(transaction=False)
    pipe.incr("371os:y")
    with pytest.raises(redis.ConnectionError):
        pipe.execute()
    assert rate_limit_hit("breaker-test", 10) is None  # fails open, as with Redis down

    assert silent_redis.received == asked


def test_once_the_moment_has_passed_a_call_asks_redis_again(silent_redis):
    with pytest.raises(redis.TimeoutError):
        get_redis().get("371os:x")
    asked = silent_redis.received

    time.sleep(0.4)  # past REDIS_BREAKER_SECONDS
    with pytest.raises(redis.TimeoutError):
        get_redis().get("371os:x")

    assert silent_redis.received > asked

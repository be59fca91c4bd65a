"""The stack under test: the Procfile's four processes (api = granian WSGI with one worker per
core, ws = daphne, worker, beat), each started directly, as a production supervisor starts
them, on free ports, each writing its output to its own log file. Plus `bare`, the bare
framework ceiling (bench/bare.py): the Procfile's `api` command, word for word, pointed at
bench/bare_wsgi.py on a port of its own.

Not under honcho (what `make run` uses): honcho relays every output line through two Python
processes, which at a few hundred requests per second cost about a fifth of a core on a
2-core machine (measured, see bench/README.md); a supervisor hands the processes a file or
journald instead. The commands are the Procfile's, run by bash as honcho runs them.
"""

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import redis

from bench.environment import BASE_DIR

READY_TIMEOUT = 120
STOP_TIMEOUT = 40
PROCFILE = BASE_DIR / "Procfile"
API_APP = "config.wsgi:application"
BARE_APP = "bench.bare_wsgi:application"
BARE = "bare"
BARE_PATH = "/bare"  # bench/bare.py's PATH


class StackError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def procfile() -> dict[str, str]:
    entries = {}
    for line in PROCFILE.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_-]+):\s*(.+)$", line)
        if match:
            entries[match.group(1)] = match.group(2)
    return entries


def bare_command(api_command: str) -> str:
    """The Procfile's api command (server, flags, worker count) serving the bare ceiling."""
    if api_command.count(API_APP) != 1:
        raise StackError(
            f"the Procfile's api command does not name {API_APP} once: cannot serve the bare "
            f"ceiling with the same command ({api_command!r})"
        )
    return api_command.replace(API_APP, BARE_APP)


class Stack:
    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.api_port = free_port()
        self.ws_port = free_port()
        self.bare_port = free_port()
        self.env = {
            **env,
            "PORT": str(self.api_port),
            "API_PORT": str(self.api_port),
            "WS_PORT": str(self.ws_port),
            # The Procfile names granian, daphne and celery: this venv's.
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        }
        self.log_dir = log_dir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.ws_url = f"ws://127.0.0.1:{self.ws_port}/v1/ws"
        self.bare_url = f"http://127.0.0.1:{self.bare_port}"
        # The bare ceiling: same variables (WEB_CONCURRENCY, VAR_DIR...), its own port and
        # settings module.
        self.bare_env = {
            **self.env,
            "PORT": str(self.bare_port),
            "API_PORT": str(self.bare_port),
            "DJANGO_SETTINGS_MODULE": "bench.bare_settings",
        }

    @property
    def log_path(self) -> Path:
        return self.log_dir

    def log_tail(self, lines: int = 20) -> str:
        tails = []
        for name in self.processes:
            try:
                text = (self.log_dir / f"{name}.log").read_text(errors="replace")
            except OSError:
                continue
            tails.append(f"--- {name}\n" + "\n".join(text.splitlines()[-lines:]))
        return "\n".join(tails)

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
            cwd=BASE_DIR,
            env=self.env,
            check=True,
        )
        commands = {name: (command, self.env) for name, command in procfile().items()}
        commands[BARE] = (bare_command(commands["api"][0]), self.bare_env)
        for name, (command, env) in commands.items():
            with (self.log_dir / f"{name}.log").open("wb") as log:
                self.processes[name] = subprocess.Popen(
                    ["bash", "-c", command],
                    cwd=BASE_DIR,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            exited = {n: p.returncode for n, p in self.processes.items() if p.poll() is not None}
            if exited:
                self.stop()
                raise StackError(f"{exited} exited:\n{self.log_tail()}")
            if self._ready():
                if not self.wait_for_worker():
                    print("bench: no worker heartbeat seen; continuing", file=sys.stderr)
                return
            time.sleep(0.25)
        self.stop()
        raise StackError(f"the stack was not ready within {READY_TIMEOUT}s:\n{self.log_tail()}")

    def _ready(self) -> bool:
        try:
            if httpx.get(f"{self.api_url}/readyz", timeout=2).status_code != 200:
                return False
            if httpx.get(self.bare_url + BARE_PATH, timeout=2).status_code != 200:
                return False
        except httpx.HTTPError:
            return False
        with socket.socket() as sock:
            sock.settimeout(1)
            return sock.connect_ex(("127.0.0.1", self.ws_port)) == 0

    def wait_for_worker(self, timeout: float = 60) -> bool:
        """The Celery worker writes a heartbeat key once it is ready to consume."""
        client = redis.Redis.from_url(self.env["REDIS_URL"])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if client.keys("371os:heartbeat:worker:*"):
                    return True
            except redis.RedisError:
                pass
            time.sleep(0.25)
        return False

    def pids(self) -> dict[str, list[int]]:
        """Process ids by Procfile entry, children (granian workers, celery pool) included."""
        found: dict[str, list[int]] = {}
        for name, process in self.processes.items():
            try:
                top = psutil.Process(process.pid)
                found[name] = [top.pid] + [c.pid for c in top.children(recursive=True)]
            except psutil.NoSuchProcess:
                found[name] = []
        return found

    def stop(self) -> None:
        """SIGTERM to each process (as a supervisor would); whatever is left after the grace
        period is killed, children included."""
        started: list[psutil.Process] = []
        for process in self.processes.values():
            with contextlib.suppress(psutil.NoSuchProcess):
                top = psutil.Process(process.pid)
                started += [top, *top.children(recursive=True)]
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
        _gone, alive = psutil.wait_procs(started, timeout=10)
        for leftover in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                leftover.kill()
        self.processes = {}

    def alive(self) -> bool:
        return bool(self.processes) and all(p.poll() is None for p in self.processes.values())

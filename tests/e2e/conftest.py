"""Whole-stack fixtures: the real processes, started the way `make run` starts them.

`run_stack()` launches `python -m system.stack --no-setup` (api, ws, worker, webhooks, beat
under honcho, plus the embedded Redis when REDIS_URL is unset) against the test database, waits
for /readyz,
and on exit stops it with SIGTERM and fails the test if any process it started is left.
Tests that read or write data through a live stack need `transactional_db`, so that their
rows are committed where the stack's processes can see them.
"""

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from urllib.parse import quote

import httpx
import psutil
import pytest
from django.conf import global_settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection

from system.devserver.embedded_redis import free_ports

BASE_DIR = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 90
STOP_TIMEOUT = 40


@dataclass
class LiveStack:
    api_url: str
    ws_url: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def database_url_for_tests() -> str:
    """A DATABASE_URL naming the database pytest-django made for this run."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    credentials = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    return f"postgres://{credentials}@{host}/{db['NAME']}"


def _wait_ready(stack: LiveStack) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if stack.process.poll() is not None:
            pytest.fail(f"the stack exited with {stack.process.returncode}:\n{stack.log_tail()}")
        try:
            if httpx.get(f"{stack.api_url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    pytest.fail(f"/readyz did not answer 200 within {READY_TIMEOUT}s:\n{stack.log_tail()}")


def _stop(stack: LiveStack, stop_signal: signal.Signals) -> None:
    """Signal the runner, as Ctrl-C or a supervisor would; then every process it started
    (honcho, granian workers, daphne, celery and its pool, redis) must be gone."""
    try:
        started = psutil.Process(stack.process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        started = []
    stack.process.send_signal(stop_signal)
    try:
        stack.process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        stack.process.kill()
    _gone, alive = psutil.wait_procs(started, timeout=10)
    for process in alive:
        process.kill()
    assert stack.process.returncode is not None
    assert not alive, f"processes left behind: {[p.pid for p in alive]}\n{stack.log_tail()}"


@contextmanager
def run_stack(
    tmp_dir: Path, stop_signal: signal.Signals = signal.SIGTERM, **env_overrides: str | None
) -> Iterator[LiveStack]:
    """Start the stack with the test process's environment plus `env_overrides` (None
    removes a variable), on free ports, with its files under `tmp_dir`; stop it with
    `stop_signal` on exit."""
    api_port, ws_port = free_ports(2)
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_tests(),
        "PORT": str(api_port),
        "WS_PORT": str(ws_port),
        "VAR_DIR": str(tmp_dir),
        "WEB_CONCURRENCY": "1",
        "WS_CONCURRENCY": "2",  # two daphne processes on one socket, as on a 2-core machine
        "WORKER_CONCURRENCY": "1",
    }
    for key, value in env_overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    log_path = tmp_dir / "stack.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "system.devserver.stack", "--no-setup"],
            cwd=BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    stack = LiveStack(
        api_url=f"http://127.0.0.1:{api_port}",
        ws_url=f"ws://127.0.0.1:{ws_port}/v1/ws",
        env=env,
        process=process,
        log_path=log_path,
    )
    try:
        _wait_ready(stack)
        yield stack
    finally:
        _stop(stack, stop_signal)


@pytest.fixture(scope="session")
def live_stack(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[LiveStack]:
    """One stack for the whole session, on the test database and the suite's Redis. Its
    notification readers (the webhook dispatcher and the alerts scan) are held back and its
    webhooks worker listens on a queue of its own: they would act on the rows and the delivery
    tasks of every later test in the same database and Redis (the webhook tests start stacks of
    their own)."""
    quiet = {
        "WEBHOOK_DISPATCH_SECONDS": "86400",
        "ALERTS_SCAN_SECONDS": "86400",
        "WEBHOOK_QUEUE": "live-stack-webhooks",
    }
    with django_db_blocker.unblock(), run_stack(tmp_path_factory.mktemp("stack"), **quiet) as stack:
        yield stack


# The demo admin's password in the e2e tests that log in as it (README, spec examples).
DEMO_ADMIN_PASSWORD = "demo-admin-pw-1"


@pytest.fixture
def demo(transactional_db, settings) -> str:
    """The demo `make run` seeds; returns the admin API key seed_demo prints once. The admin's
    password is hashed as the stack hashes (the suite's fast hasher is not among its own)."""
    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS
    out = StringIO()
    call_command("seed_demo", stdout=out)
    admin = get_user_model().objects.get(username="admin")
    admin.set_password(DEMO_ADMIN_PASSWORD)
    admin.save(update_fields=["password"])
    return re.search(r"admin API key: created, (371os_\S+)", out.getvalue()).group(1)

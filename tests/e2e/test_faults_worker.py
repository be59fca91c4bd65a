"""A worker SIGKILLed in the middle of a meeting, a deployment submission and a session sweep
batch, then replaced by a new one (real Celery workers on a queue of their own, the broker's
visibility timeout short so that the lost delivery comes back within the test): the work ends
as it would have without the kill, every event is in the log once, paid work ran once.

(A worker killed mid workflow step: test_worker_crash.py.)
"""

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from agents.services import agent_create, agent_start
from config.celery import app as celery_app
from messaging.models import Channel
from questflow.models import Deployment, Meeting
from questflow.services import deployment_create, meeting_prepare
from sessions_app.models import Session
from system.models import EventLogEntry
from tests.agents.llm_servers import FakeOpenAIServer
from tests.e2e.conftest import BASE_DIR, database_url_for_tests
from tests.e2e.test_worker_crash import routing_file
from tests.questflow.test_meetings_and_deployments import DEPLOY

pytestmark = [pytest.mark.e2e]

QUEUE = "faults-worker"
VISIBILITY_TIMEOUT = 3
WAIT = 60


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo",
             "--queues", QUEUE, "--loglevel", "INFO", "--without-heartbeat",
             "--without-mingle", "--without-gossip"],
            cwd=BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


def wait_for(predicate, timeout: float, log: Path, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    lines = [
        line
        for line in log.read_text(errors="replace").splitlines()
        if any(word in line for word in ("Task ", "ERROR", "WARNING", "ready."))
    ]
    pytest.fail(f"timed out waiting for {what}; worker log:\n" + "\n".join(lines[-30:]))


class Workers:
    """The first worker, killed with SIGKILL (its whole process group: the Akash CLI it runs
    dies with it) at the test's moment; then its replacement, stopped at the end."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.running: list[subprocess.Popen] = []

    def __enter__(self) -> "Workers":
        self.running.append(start_worker(self.env, self.log))
        return self

    def kill_and_replace(self, check_killed=None) -> None:
        first = self.running[-1]
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
        if check_killed is not None:
            check_killed()
        time.sleep(VISIBILITY_TIMEOUT + 1)  # the unacknowledged delivery becomes visible again
        self.running.append(start_worker(self.env, self.log))

    def __exit__(self, *exc) -> None:
        for worker in self.running:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
                try:
                    worker.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(worker.pid, signal.SIGKILL)


def worker_env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url_for_tests(),
        "CELERY_QUEUE": QUEUE,
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
        **extra,
    }


def on_our_queue(create):
    """Run `create` with this process's tasks published to the test's queue."""
    celery_app.conf.task_default_queue = QUEUE
    try:
        return create()
    finally:
        celery_app.conf.task_default_queue = "celery"


def run_on_worker(task_name: str) -> None:
    celery_app.send_task(task_name, queue=QUEUE)


def events_about(object_id: str) -> list[str]:
    entries = EventLogEntry.objects.filter(payload__id=object_id).order_by("event_id")
    return [e.payload["status"] for e in entries]


def test_a_worker_killed_mid_meeting_is_replaced_and_the_meeting_completes_once(
    transactional_db, make_user, tmp_path
):
    for agent_type in ("ceo_mimi", "cto_alex"):
        agent_start(agent=agent_create(name=agent_type, type=agent_type))
    log = tmp_path / "worker.log"
    with FakeOpenAIServer() as server:
        server.enqueue_text("CEO on hiring")
        server.enqueue_delay(30, text="never delivered")  # the worker dies during this one
        for text in ("CTO on hiring", "Hire two engineers."):
            server.enqueue_text(text)
        env = worker_env(LLM_ROUTING_PATH=str(routing_file(tmp_path, server)), SLOW_KEY="test-key")
        meeting, _agents = on_our_queue(
            lambda: meeting_prepare(
                participants=["CTO"], agenda=["Hiring"], topic=None,
                actor=make_user("chair"), queue=True,
            )
        )  # fmt: skip
        with Workers(env, log) as workers:
            wait_for(lambda: len(server.requests) == 2, WAIT, log, "the CTO's turn")
            workers.kill_and_replace()
            wait_for(
                lambda: (
                    not Meeting.objects.filter(
                        pk=meeting.pk, status=Meeting.Status.RUNNING
                    ).exists()
                ),
                WAIT,
                log,
                "the meeting to finish",
            )

    meeting.refresh_from_db()
    assert meeting.status == Meeting.Status.COMPLETED, meeting.error
    assert [(t["title"], t["content"]) for t in meeting.transcript] == [
        ("CEO", "CEO on hiring"),
        ("CTO", "CTO on hiring"),
    ]
    assert meeting.outcomes == ["Hire two engineers."]
    assert events_about(meeting.meeting_id).count("completed") == 1


def counting_cli(tmp_path: Path, seconds: float) -> tuple[str, Path]:
    """A fake Akash CLI that appends a line to a file when it starts, takes `seconds`,
    then succeeds."""
    invocations = tmp_path / "invocations"
    script = tmp_path / "akash"
    script.write_text(
        f"#!{sys.executable}\nimport sys, time\n"
        f"open({str(invocations)!r}, 'a').write('run\\n')\n"
        f"time.sleep({seconds})\nprint('deployed')\n"
    )
    script.chmod(0o755)
    return f"{script} tx deployment create {{sdl}}", invocations


def test_a_worker_killed_mid_deployment_submission_never_runs_the_cli_twice(
    transactional_db, make_user, tmp_path
):
    command, invocations = counting_cli(tmp_path, seconds=30)
    log = tmp_path / "worker.log"
    env = worker_env(AKASH_BACKEND="cli", AKASH_CLI_COMMAND=command)
    deployment = on_our_queue(lambda: deployment_create(body=DEPLOY, actor=make_user("ops")))

    with Workers(env, log) as workers:
        wait_for(invocations.exists, WAIT, log, "the CLI to start")
        workers.kill_and_replace()
        # The redelivered task runs now; then the sweep (on beat in production) finds the
        # submission whose worker was lost once its lease ran out.
        time.sleep(VISIBILITY_TIMEOUT)
        run_on_worker("questflow.sweep")
        wait_for(
            lambda: Deployment.objects.filter(
                pk=deployment.pk, status=Deployment.Status.FAILED
            ).exists(),
            WAIT,
            log,
            "the lost submission to be failed",
        )

    deployment.refresh_from_db()
    # A kill during the CLI call leaves its outcome unknown: it is not run again (paid work),
    # the deployment says so, and an operator re-submits after checking Akash.
    assert invocations.read_text().splitlines() == ["run"]
    assert "lost" in deployment.backend_output


SESSIONS = 12000  # three batches of the sweep's 5,000


def due_sessions(owner, count: int) -> None:
    now = timezone.now()
    channels = Channel.objects.bulk_create(
        Channel(name=f"s{i}", type="private", created_by=owner) for i in range(count)
    )
    Session.objects.bulk_create(
        (
            Session(
                agent_uuid=owner_agent_uuid,
                user_id="u",
                owner=owner,
                channel=channel,
                expires_at=now - timedelta(minutes=1),
                warn_at=now - timedelta(minutes=6),
                warned_at=now - timedelta(minutes=6),
                timeout_minutes=30,
                max_duration_minutes=720,
                warning_threshold_minutes=5,
            )
            for channel in channels
        ),
        batch_size=2000,
    )


owner_agent_uuid = "00000000-0000-4000-8000-000000000001"


def sweep_statement_running() -> bool:
    settings = connection.settings_dict
    with psycopg.connect(
        host=settings["HOST"] or "127.0.0.1",
        port=settings["PORT"] or 5432,
        user=settings["USER"],
        dbname=settings["NAME"],
        autocommit=True,
    ) as admin:
        return bool(
            admin.execute(
                "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
                "AND state = 'active' AND query LIKE 'WITH claimed AS%%'"
            ).fetchall()
        )


def some_sessions_still_active() -> None:
    """The kill came before the sweep was done (its batch in flight rolls back)."""
    assert Session.objects.filter(status=Session.Status.ACTIVE).exists()


def test_a_worker_killed_mid_sweep_batch_expires_each_session_once(
    transactional_db, make_user, tmp_path
):
    due_sessions(make_user("owner"), SESSIONS)
    log = tmp_path / "worker.log"
    with Workers(worker_env(), log) as workers:
        run_on_worker("sessions.sweep")
        wait_for(sweep_statement_running, WAIT, log, "a sweep batch")
        workers.kill_and_replace(check_killed=some_sessions_still_active)

        def swept() -> bool:
            if Session.objects.filter(status=Session.Status.ACTIVE).exists():
                run_on_worker("sessions.sweep")  # beat's part, every SESSION_SWEEP_SECONDS
                time.sleep(1)
                return False
            return True

        wait_for(swept, WAIT, log, "every session to expire")

    expired = Counter(
        EventLogEntry.objects.filter(payload__event="expired").values_list("session_id", flat=True)
    )
    assert len(expired) == SESSIONS
    assert set(expired.values()) == {1}

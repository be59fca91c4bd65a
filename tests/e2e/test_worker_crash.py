"""A worker killed with SIGKILL in the middle of a workflow step: a new worker picks the step
up again, the workflow completes, and every step completes exactly once."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from agents.services import agent_create, agent_start
from config.celery import app as celery_app
from questflow.models import Workflow, WorkflowStep
from questflow.services import workflow_create
from tests.agents.llm_servers import FakeOpenAIServer
from tests.e2e.conftest import BASE_DIR, database_url_for_tests

pytestmark = [pytest.mark.e2e, pytest.mark.embedded]

QUEUE = "crash-test"
VISIBILITY_TIMEOUT = 3


def routing_file(tmp_path: Path, server: FakeOpenAIServer) -> Path:
    path = tmp_path / "routing.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "providers": {
                    "slow": {
                        "kind": "openai",
                        "base_url": server.base_url,
                        "api_key_env": "SLOW_KEY",
                        "timeout_seconds": 60,
                    },
                },
                "circuit_breaker": {"failures": 100, "cooldown_seconds": 30},
                "models": {
                    "gpt-4": [
                        {
                            "provider": "slow",
                            "model": "m",
                            "cost_per_1k_input": 0,
                            "cost_per_1k_output": 0,
                        }
                    ]
                },
            }
        )
    )
    return path


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--pool",
                "solo",
                "--queues",
                QUEUE,
                "--loglevel",
                "INFO",
                "--without-heartbeat",
                "--without-mingle",
                "--without-gossip",
            ],
            cwd=BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_for(predicate, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out; worker log:\n{log.read_text()[-4000:]}")


def test_a_killed_worker_loses_no_step_and_repeats_none(transactional_db, make_user, tmp_path):
    for agent_type in ("cto_alex", "cpo_agent", "cmo_anova"):
        agent_start(agent=agent_create(name=agent_type, type=agent_type))
    log = tmp_path / "worker.log"
    with FakeOpenAIServer() as server:
        server.enqueue_text("design")
        server.enqueue_delay(30, text="never delivered")  # the worker dies during this one
        server.enqueue_text("scope")
        server.enqueue_text("launch")
        env = {
            **os.environ,
            "DATABASE_URL": database_url_for_tests(),
            "LLM_ROUTING_PATH": str(routing_file(tmp_path, server)),
            "SLOW_KEY": "test-key",
            "CELERY_QUEUE": QUEUE,
            "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
        }
        celery_app.conf.task_default_queue = QUEUE
        try:
            workflow = workflow_create(
                template="Plugin Development",
                steps=None,
                name=None,
                input={},
                actor=make_user("crash"),
            )
        finally:
            celery_app.conf.task_default_queue = "celery"
        step = WorkflowStep.objects.filter(workflow=workflow)
        first = start_worker(env, log)
        try:
            # Killed once the slow reply to step 2 is being awaited: mid-step for sure.
            wait_for(lambda: len(server.requests) == 2, 60, log)
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(10)
            time.sleep(VISIBILITY_TIMEOUT + 1)  # the lost delivery becomes visible again
            second = start_worker(env, log)
            try:
                wait_for(
                    lambda: Workflow.objects.filter(pk=workflow.pk, status="completed").exists(),
                    90,
                    log,
                )
            finally:
                second.send_signal(signal.SIGTERM)
                second.wait(20)
        finally:
            if first.poll() is None:
                os.killpg(first.pid, signal.SIGKILL)

    steps = list(step.order_by("position"))
    assert [s.output for s in steps] == ["design", "scope", "launch"]
    assert [s.attempts for s in steps] == [1, 2, 1]
    assert all(s.status == "completed" for s in steps)

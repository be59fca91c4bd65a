"""The session-sweep scenario, in a process of its own on a database of its own.

    DATABASE_URL=<a bench sweep database> python -m bench.sweep --total T --due D --runs R

One database per total size (the harness names them `<bench db>_sweep_<total>`), so that "D due
among T sessions" is exactly what the sessions table holds. The rows are bulk-created (a
million sessions through session_create would take hours; see bench/README.md): T sessions of
one agent and owner, each with its own direct channel, D of them due at a fixed instant REF and
the others due hours later and outside their warning window. Each run restores the D sessions
to `active`, empties the event log, VACUUMs, then times `sessions_sweep(now=REF)`: exactly
what the beat-scheduled task runs, event-log rows and channel-layer publishes included.
"""

import argparse
import json
import os
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

REF = datetime(2030, 1, 1, tzinfo=UTC)
BATCH = 10_000


def _prepare(total: int, due: int) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from agents.models import Agent
    from agents.services import agent_create, agent_start
    from messaging.models import Channel
    from sessions_app.models import Session
    from system.models import EventLogEntry

    sessions = Session._meta.db_table
    have = Session.objects.count()
    have_due = Session.objects.filter(expires_at__lte=REF).count()
    if have != total or have_due != due:
        if have:
            with connection.cursor() as cursor:  # sessions, members, messages go with them
                cursor.execute(f"TRUNCATE {Channel._meta.db_table} CASCADE")
        owner, _ = get_user_model().objects.get_or_create(username="bench-sweep")
        agent = Agent.objects.filter(name="bench-sweep-agent").first()
        if agent is None:
            agent = agent_start(agent=agent_create(name="bench-sweep-agent", type="cto_alex"))
        started = time.monotonic()
        for start in range(0, total, BATCH):
            end = min(start + BATCH, total)
            with transaction.atomic():
                channels = Channel.objects.bulk_create(
                    Channel(name=f"sweep {i}", type=Channel.Type.DIRECT, created_by=owner)
                    for i in range(start, end)
                )
                Session.objects.bulk_create(
                    _session(i, due, agent, owner, channel)
                    for i, channel in zip(range(start, end), channels, strict=True)
                )
        print(
            f"sweep data: {total} sessions ({due} due) bulk-created in "
            f"{time.monotonic() - started:.0f}s",
            file=sys.stderr,
            flush=True,
        )
    # Restore the state a sweep changes: the due sessions active again, no events.
    Session.objects.filter(expires_at__lte=REF).update(
        status=Session.Status.ACTIVE, expired_at=None, warned_at=None
    )
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {EventLogEntry._meta.db_table}")
        cursor.execute(f"VACUUM ANALYZE {sessions}")
        cursor.execute(f"VACUUM ANALYZE {EventLogEntry._meta.db_table}")


def _session(i: int, due: int, agent, owner, channel):
    from sessions_app.models import Session

    if i < due:
        expires = REF - timedelta(seconds=1 + i % 3600)  # due at REF
    else:
        expires = REF + timedelta(hours=1, seconds=i % 36_000)  # not due, not near expiry
    return Session(
        agent=agent,
        agent_uuid=agent.agent_id,
        user_id=f"sweep-user-{i}",
        owner=owner,
        channel=channel,
        context={"source": "make bench"},
        created_at=expires - timedelta(minutes=30),
        last_activity=expires - timedelta(minutes=30),
        expires_at=expires,
        timeout_minutes=30,
        auto_renew=True,
        max_duration_minutes=720,
        warning_threshold_minutes=5,
        warn_at=expires - timedelta(minutes=5),
    )


def _timed_sweep(timeout: float) -> dict:
    """sessions_sweep(now=REF) in a thread of its own (its own database connection), timed;
    past `timeout` the run is abandoned and what it committed so far is counted."""
    from django.db import connection

    from sessions_app.models import Session
    from sessions_app.sweep import sessions_sweep

    outcome: dict = {}

    def run() -> None:
        try:
            outcome["result"] = sessions_sweep(now=REF)
        except Exception as exc:  # noqa: BLE001 - reported to the harness
            outcome["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    started = time.perf_counter()
    thread.start()
    thread.join(timeout)
    seconds = time.perf_counter() - started
    if thread.is_alive():
        expired = Session.objects.filter(status=Session.Status.EXPIRED).count()
        return {"seconds": round(seconds, 3), "timed_out": True, "expired": expired, "warned": 0}
    if "error" in outcome:
        return {"seconds": round(seconds, 3), "error": outcome["error"], "expired": 0}
    result = outcome["result"]
    return {"seconds": round(seconds, 4), "expired": result.expired, "warned": result.warned}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sweep")
    parser.add_argument("--total", type=int, required=True)
    parser.add_argument("--due", type=int, required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    if not 0 < args.due <= args.total:
        parser.error("need 0 < due <= total")
    django.setup()

    runs = []
    for _ in range(args.runs):
        _prepare(args.total, args.due)
        runs.append(_timed_sweep(args.timeout))
        if runs[-1].get("timed_out") or runs[-1].get("error"):
            break  # the next run would end the same way; the thread is still running
    print(json.dumps({"total": args.total, "due": args.due, "runs": runs}), flush=True)
    # A sweep abandoned at the timeout is still running in its thread: leave without it (its
    # open transaction rolls back with the connection; the next run restores the rows).
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())

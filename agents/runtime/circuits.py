"""The circuit breakers' states, shared through Redis for the admin dashboard.

Breakers live in memory in each process (agents.runtime.breaker), and the workers make the LLM
calls, so no single process knows every circuit. Each change of a provider's circuit in any
process is written to one hash, `371os:llm:circuits`, field `<provider>|<host>:<pid>`, as JSON
{provider, process, state, consecutive_failures, since} (`since`: Unix time of the change).
One HSET per change, which only happens on a failure or on the recovery after one: successful
calls cost nothing. Publishing never raises; with Redis away the change is simply not shown.
"""

import json
import logging
import os
import socket
import time

import redis

from system.kernel.redis_client import get_redis

__all__ = ["CIRCUITS_KEY", "circuit_published", "circuits_read"]

logger = logging.getLogger(__name__)

CIRCUITS_KEY = "371os:llm:circuits"
# Entries of processes that have not changed anything for this long are dropped on read: a
# restarted worker leaves its old pid behind.
CIRCUIT_ENTRY_MAX_AGE_SECONDS = 24 * 3600


def process_label() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def circuit_published(provider: str, state: str, consecutive_failures: int) -> None:
    """The breakers' `on_change` hook: record this process's view of `provider`."""
    process = process_label()
    entry = {
        "provider": provider,
        "process": process,
        "state": state,
        "consecutive_failures": consecutive_failures,
        "since": time.time(),
    }
    try:
        get_redis().hset(CIRCUITS_KEY, f"{provider}|{process}", json.dumps(entry))
    except (redis.RedisError, OSError) as exc:
        logger.debug("circuit change of %s not published (%s)", provider, type(exc).__name__)


def circuits_read(*, now: float | None = None) -> list[dict] | None:
    """Every process's latest circuit change, newest first; None when Redis is unreachable.
    Entries older than CIRCUIT_ENTRY_MAX_AGE_SECONDS are pruned."""
    now = time.time() if now is None else now
    try:
        client = get_redis()
        raw = client.hgetall(CIRCUITS_KEY)
        entries, stale = [], []
        for field, value in raw.items():
            try:
                entry = json.loads(value)
            except ValueError:
                stale.append(field)
                continue
            if now - float(entry.get("since", 0)) > CIRCUIT_ENTRY_MAX_AGE_SECONDS:
                stale.append(field)
            else:
                entries.append(entry)
        if stale:
            client.hdel(CIRCUITS_KEY, *stale)
    except redis.RedisError:
        return None
    return sorted(entries, key=lambda e: -float(e["since"]))

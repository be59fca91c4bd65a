"""Worker heartbeats, read by the status API's `agent_orchestrator` probe.

Every Celery worker writes `371os:heartbeat:worker:<hostname>` (its Unix time, with a TTL) every
WORKER_HEARTBEAT_SECONDS, from a thread started on `worker_ready` (connected in this app's
config); an index set of the hostnames lets readers skip a keyspace scan.
"""

import logging
import threading
import time

import redis
from django.conf import settings

from system.kernel.redis_client import get_redis

logger = logging.getLogger(__name__)

HEARTBEAT_KEY_PREFIX = "371os:heartbeat:worker:"
HEARTBEAT_INDEX_KEY = "371os:heartbeat:workers"


def heartbeat_interval() -> int:
    return getattr(settings, "WORKER_HEARTBEAT_SECONDS", 10)


def heartbeat_fresh_seconds() -> int:
    """A heartbeat older than three missed beats is stale."""
    return 3 * heartbeat_interval()


def heartbeat_ttl_seconds() -> int:
    """How long a stopped worker is reported (as stale) before it disappears."""
    return 12 * heartbeat_interval()


def worker_heartbeat_write(hostname: str, *, at: float | None = None) -> None:
    """Record that `hostname` is alive at `at` (now by default). Raises redis.RedisError."""
    pipe = get_redis().pipeline(transaction=False)
    pipe.set(HEARTBEAT_KEY_PREFIX + hostname, repr(time.time() if at is None else at))
    pipe.expire(HEARTBEAT_KEY_PREFIX + hostname, heartbeat_ttl_seconds())
    pipe.sadd(HEARTBEAT_INDEX_KEY, hostname)
    pipe.execute()


def worker_heartbeat_delete(hostname: str) -> None:
    pipe = get_redis().pipeline(transaction=False)
    pipe.delete(HEARTBEAT_KEY_PREFIX + hostname)
    pipe.srem(HEARTBEAT_INDEX_KEY, hostname)
    pipe.execute()


def worker_heartbeats() -> dict[str, float]:
    """hostname → Unix time of its last heartbeat, for workers whose key has not expired.

    The index set lets this read O(workers) keys instead of scanning the keyspace; names
    whose key expired are dropped from it here.
    """
    client = get_redis()
    names = sorted(name.decode() for name in client.smembers(HEARTBEAT_INDEX_KEY))
    if not names:
        return {}
    values = client.mget([HEARTBEAT_KEY_PREFIX + name for name in names])
    gone = [name for name, value in zip(names, values, strict=True) if value is None]
    if gone:
        client.srem(HEARTBEAT_INDEX_KEY, *gone)
    return {
        name: float(value) for name, value in zip(names, values, strict=True) if value is not None
    }


class _HeartbeatThread(threading.Thread):
    def __init__(self, hostname: str) -> None:
        super().__init__(name="worker-heartbeat", daemon=True)
        self.hostname = hostname
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                worker_heartbeat_write(self.hostname)
            except redis.RedisError as exc:
                logger.warning("worker heartbeat not written (%s)", type(exc).__name__)
            self.stopped.wait(heartbeat_interval())


_heartbeat: _HeartbeatThread | None = None


def worker_heartbeat_start(hostname: str) -> None:
    """Start beating for this worker process (idempotent)."""
    global _heartbeat
    if _heartbeat is not None and _heartbeat.is_alive():
        return
    _heartbeat = _HeartbeatThread(hostname)
    _heartbeat.start()


def worker_heartbeat_stop() -> None:
    """Stop beating and remove the key: a worker shut down cleanly is gone, not stale."""
    global _heartbeat
    beat, _heartbeat = _heartbeat, None
    if beat is None:
        return
    beat.stopped.set()
    beat.join(timeout=2)
    try:
        worker_heartbeat_delete(beat.hostname)
    except redis.RedisError as exc:
        logger.warning("worker heartbeat not removed (%s)", type(exc).__name__)

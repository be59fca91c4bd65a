"""Prometheus metrics, served at GET /metrics (system.ops.views.metrics) when METRICS_ENABLED.

Two kinds, by where the number lives:

- per process, in prometheus_client's registry: HTTP requests by route, method and status, the
  request latency histogram (both observed by RequestCountersMiddleware);
- cluster-wide, read at scrape time by `ClusterCollector`: Celery task outcomes (counted in
  Redis by the workers, which serve no HTTP), events published (the event log's highest id),
  active sessions and running agents (the database).

Granian runs several API workers and a scrape reaches one of them, so by default the
per-process metrics are that worker's own (Prometheus sums them over restarts correctly, but
one scrape shows one worker). For totals over the workers of a machine, set
`PROMETHEUS_MULTIPROC_DIR` to an empty directory, the same for every process, before they
start: prometheus_client then keeps the values in files there and /metrics aggregates them.
"""

import logging
import os
from collections.abc import Iterator

import redis
from celery.signals import task_postrun
from django.db import DatabaseError
from django.db.models import Max
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from agents.selectors import agents_running_count
from sessions_app.selectors import sessions_active_count
from system.kernel.redis_client import get_redis
from system.models import EventLogEntry

logger = logging.getLogger(__name__)

# Metric names may not start with a digit, so the product's name is spelled os371.
NAMESPACE = "os371"
CELERY_OUTCOMES_KEY = "371os:metrics:celery-tasks"

HTTP_REQUESTS = Counter(
    "http_requests",
    "HTTP requests served by this process, by route pattern, method and status code.",
    ["route", "method", "status"],
    namespace=NAMESPACE,
)
HTTP_REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time from the first middleware to the response, by route pattern and method.",
    ["route", "method"],
    namespace=NAMESPACE,
)


def request_observed(*, route: str, method: str, status_code: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(route, method, str(status_code)).inc()
    HTTP_REQUEST_DURATION.labels(route, method).observe(seconds)


# --- Celery task outcomes: counted in Redis by the worker processes -------------------------


def task_outcome_counted(*, task: str, outcome: str) -> None:
    try:
        get_redis().hincrby(CELERY_OUTCOMES_KEY, f"{task}|{outcome}", 1)
    except redis.RedisError as exc:
        logger.warning("task outcome not counted (%s)", type(exc).__name__)


def _on_task_postrun(sender=None, state: str | None = None, **kwargs) -> None:
    name = getattr(sender, "name", None) or "unknown"
    task_outcome_counted(task=name, outcome=(state or "UNKNOWN").lower())


def task_outcome_counting_start() -> None:
    """Connect the Celery signal that counts outcomes. Called on `worker_init`, in the main
    process before the pool forks, so that every pool process inherits the receiver."""
    task_postrun.connect(_on_task_postrun, weak=False, dispatch_uid="os371-task-outcomes")


def celery_task_outcomes() -> dict[tuple[str, str], int]:
    raw = get_redis().hgetall(CELERY_OUTCOMES_KEY)
    outcomes = {}
    for field, count in raw.items():
        task, _, outcome = field.decode().rpartition("|")
        outcomes[(task, outcome)] = int(count)
    return outcomes


# --- Read at scrape time -------------------------------------------------------------------


class ClusterCollector(Collector):
    """Metrics whose truth is shared by every process: read from Redis and the database at
    each scrape, so every API worker reports the same values. A part that does not answer
    leaves its metrics out of the scrape rather than failing it."""

    def describe(self) -> Iterator[Metric]:
        """The names, without touching Redis or the database (called at registration)."""
        yield CounterMetricFamily(f"{NAMESPACE}_celery_tasks", "", labels=["task", "outcome"])
        yield CounterMetricFamily(f"{NAMESPACE}_events_published", "")
        yield GaugeMetricFamily(f"{NAMESPACE}_active_sessions", "")
        yield GaugeMetricFamily(f"{NAMESPACE}_active_agents", "")

    def collect(self) -> Iterator[Metric]:
        try:
            outcomes = celery_task_outcomes()
        except redis.RedisError:
            outcomes = None
        if outcomes is not None:
            family = CounterMetricFamily(
                f"{NAMESPACE}_celery_tasks",
                "Celery tasks finished by the workers, by task name and outcome.",
                labels=["task", "outcome"],
            )
            for (task, outcome), count in sorted(outcomes.items()):
                family.add_metric([task, outcome], count)
            yield family
        yield from self._database_metrics()

    def _database_metrics(self) -> Iterator[Metric]:
        try:
            last_event_id = EventLogEntry.objects.aggregate(last=Max("event_id"))["last"] or 0
            sessions = sessions_active_count()
            agents = agents_running_count()
        except DatabaseError:
            return
        yield CounterMetricFamily(
            f"{NAMESPACE}_events_published",
            "Events appended to the event log and published to WebSocket clients (the log's "
            "highest event id).",
            value=last_event_id,
        )
        yield GaugeMetricFamily(
            f"{NAMESPACE}_active_sessions", "Sessions in status active.", value=sessions
        )
        yield GaugeMetricFamily(
            f"{NAMESPACE}_active_agents", "Agents in status running.", value=agents
        )


_cluster_collector = ClusterCollector()
REGISTRY.register(_cluster_collector)


def metrics_registry() -> CollectorRegistry:
    """The registry to expose: this process's, or in multiprocess mode the aggregate of the
    files in PROMETHEUS_MULTIPROC_DIR plus the cluster-wide collector."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    registry.register(_cluster_collector)
    return registry

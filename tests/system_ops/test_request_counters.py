"""The per-minute request and 5xx counters behind requests_per_minute and error_rate."""

import time

import pytest
import time_machine

from system.kernel.ratelimit import REQUEST_STATS_PREFIX, REQUEST_STATS_TTL, WINDOW_SECONDS
from system.kernel.redis_client import get_redis
from system.ops.counters import request_rates

pytestmark = [pytest.mark.embedded, pytest.mark.urls("tests.system_ops.urls")]


@pytest.mark.django_db
def test_a_burst_is_counted_and_reported_for_the_last_full_minute(
    client, client_as, fresh_worker, fresh_rate_window
):
    monitor = client_as("system_monitor")
    minute = int(time.time() // WINDOW_SECONDS) * WINDOW_SECONDS

    statuses = [client.get("/healthz").status_code for _ in range(30)]
    statuses += [client.get("/test/fail").status_code for _ in range(10)]
    with time_machine.travel(minute + WINDOW_SECONDS + 1):
        metrics = monitor.get("/api/v1/system/status").json()["metrics"]

    assert statuses.count(500) == 10
    assert metrics["requests_per_minute"] == 40
    assert metrics["error_rate"] == 0.25


@pytest.mark.django_db
def test_each_request_costs_one_pipelined_counter_key_with_an_expiry(client, fresh_rate_window):
    client.get("/healthz")
    client.get("/test/fail")

    keys = list(get_redis().scan_iter(match=f"{REQUEST_STATS_PREFIX}*"))
    assert len(keys) == 1
    assert get_redis().hgetall(keys[0]) == {b"requests": b"2", b"errors": b"1"}
    assert 0 < get_redis().ttl(keys[0]) <= REQUEST_STATS_TTL


def test_a_quiet_minute_reports_zero_requests_and_no_errors():
    assert request_rates(now=time.time() + 3600) == (0, 0.0)

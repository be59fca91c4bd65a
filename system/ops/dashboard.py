"""The admin dashboard's panels beyond the status object: WebSocket connections per ws
process, LLM circuits across processes, recent API errors, and the charts over the last hour
or day. Every panel that reads Redis says "unknown" when Redis is away, never fails the page.

Reads: Redis (three small keys, plus one pipelined round trip of per-minute counters), and four
grouped queries through the product apps' selectors.
"""

import json
import time
from datetime import UTC, datetime, timedelta

import redis
from django.contrib.humanize.templatetags.humanize import naturaltime
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from agents.runtime import get_router
from agents.runtime.circuits import circuits_read
from agents.selectors import agents_top_spend
from messaging.selectors import messages_count_per_bucket
from sessions_app.selectors import sessions_active_per_bucket
from system.kernel.redis_client import get_redis
from system.kernel.sockets import WS_PROCESSES_KEY, WS_REPORT_SECONDS
from system.ops.counters import api_errors_recent, request_series
from system.ops.dashboard_charts import Bucket, Row, bar_list_chart, column_chart

# Written by each ws process (system.realtime.census) every WS_REPORT_SECONDS; an entry three
# periods old is stale (shown apart, not in the total) and one WS_PRUNE_SECONDS old is deleted.
WS_STALE_SECONDS = 3 * WS_REPORT_SECONDS
WS_PRUNE_SECONDS = 300
RANGES = ("hour", "day")


def when(moment: datetime | float | None) -> SafeString:
    """ "3 minutes ago", with the exact time in the title."""
    if moment is None:
        return SafeString("")
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, tz=UTC)
    exact = moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return format_html(
        '<time class="dashboard-time" datetime="{}" title="{}">{}</time>',
        exact,
        exact,
        naturaltime(moment),
    )


def ws_processes(*, now: float | None = None) -> dict:
    """{"rows": [{process, connections, updated, stale}], "total"}; total None if Redis is
    away."""
    now = time.time() if now is None else now
    try:
        client = get_redis()
        raw = client.hgetall(WS_PROCESSES_KEY)
        rows, gone = [], []
        for field, value in raw.items():
            try:
                entry = json.loads(value)
                age = now - float(entry["updated_at"])
            except (ValueError, KeyError, TypeError):
                gone.append(field)
                continue
            if age > WS_PRUNE_SECONDS:
                gone.append(field)
                continue
            rows.append(
                {
                    "process": field.decode() if isinstance(field, bytes) else field,
                    "connections": int(entry.get("connections", 0)),
                    "updated": when(float(entry["updated_at"])),
                    "stale": age > WS_STALE_SECONDS,
                }
            )
        if gone:
            client.hdel(WS_PROCESSES_KEY, *gone)
    except redis.RedisError:
        return {"rows": [], "total": None}
    rows.sort(key=lambda r: (r["stale"], r["process"]))
    return {"rows": rows, "total": sum(r["connections"] for r in rows if not r["stale"])}


def llm_circuits() -> dict:
    """One row per configured provider and process that reported a change; a provider no
    process reported is closed. {"rows": [...], "known": False} when Redis is away."""
    entries = circuits_read()
    providers = get_router().config.providers
    rows = []
    for name, spec in providers.items():
        mine = [e for e in entries or () if e.get("provider") == name]
        for entry in mine:
            rows.append(
                {
                    "provider": name,
                    "configured": spec.is_configured(),
                    "state": entry.get("state", "closed"),
                    "failures": entry.get("consecutive_failures", 0),
                    "since": when(float(entry.get("since", 0))),
                    "process": entry.get("process", ""),
                }
            )
        if not mine:
            rows.append(
                {
                    "provider": name,
                    "configured": spec.is_configured(),
                    "state": "unknown" if entries is None else "closed",
                    "failures": "" if entries is None else 0,
                    "since": "",
                    "process": "",
                }
            )
    return {"rows": rows, "known": entries is not None}


def api_errors() -> list[dict] | None:
    errors = api_errors_recent()
    if errors is None:
        return None
    return [{**e, "when": when(float(e.get("at", 0)))} for e in errors]


def _bucket_starts(range_name: str, now: datetime) -> tuple[list[datetime], timedelta]:
    if range_name == "day":
        last = now.replace(minute=0, second=0, microsecond=0)
        step, n = timedelta(hours=1), 24
    else:
        last = now.replace(second=0, microsecond=0)
        step, n = timedelta(minutes=1), 60
    return [last - step * (n - 1 - i) for i in range(n)], step


def _requests(starts: list[datetime], step: timedelta) -> list[Bucket] | None:
    minutes_per_bucket = int(step.total_seconds() // 60)
    first = int(starts[0].timestamp())
    minute_starts = [first + 60 * i for i in range(len(starts) * minutes_per_bucket)]
    series = request_series(starts=minute_starts)
    if series is None:
        return None
    buckets = []
    for i, start in enumerate(starts):
        chunk = series[i * minutes_per_bucket : (i + 1) * minutes_per_bucket]
        requests, errors = sum(r for r, _ in chunk), sum(e for _, e in chunk)
        buckets.append(Bucket(start=start, value=requests, tip=f"requests, {errors} 5xx"))
    return buckets


def charts(range_name: str, *, now: datetime | None = None) -> dict[str, SafeString]:
    now = now or timezone.now()
    starts, step = _bucket_starts(range_name, now)
    per_hour = range_name == "day"
    per = "hour" if per_hour else "minute"
    requests = _requests(starts, step)
    messages = messages_count_per_bucket(since=starts[0], per_hour=per_hour)
    sessions = sessions_active_per_bucket(bounds=[*starts, starts[-1] + step])
    spend = agents_top_spend(since=starts[0])
    return {
        "requests": (
            column_chart(
                title=f"Requests per {per}",
                buckets=requests,
                colour="#0969da",
                css_class="chart-requests",
                per_hour=per_hour,
            )
            if requests is not None
            else format_html('<p class="chart-requests">Requests per {}: unknown</p>', per)
        ),
        "messages": column_chart(
            title=f"Messages per {per}",
            buckets=[Bucket(start=s, value=messages.get(s, 0), tip="messages") for s in starts],
            colour="#8250df",
            css_class="chart-messages",
            per_hour=per_hour,
        ),
        "sessions": column_chart(
            title=f"Sessions active per {per}",
            buckets=[
                Bucket(start=s, value=n, tip="sessions active")
                for s, n in zip(starts, sessions, strict=True)
            ],
            colour="#1a7f37",
            css_class="chart-sessions",
            per_hour=per_hour,
        ),
        "spend": bar_list_chart(
            title=f"LLM spend per agent, last {range_name} (top 10)",
            rows=[
                Row(
                    name=s.name,
                    value=float(s.cost),
                    label=f"${s.cost:.4f} · {s.calls} calls",
                    tip=f"{s.name}: ${s.cost:.6f} in {s.calls} calls",
                )
                for s in spend
            ],
            colour="#bf8700",
            css_class="chart-spend",
        ),
    }

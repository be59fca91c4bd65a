"""The scenarios: what each one sends, what it expects back, and its budget."""

import contextlib
import json
import math
import random
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx
import psutil
import redis

from bench.environment import BASE_DIR
from bench.params import Params
from bench.report import Row, median
from bench.stack import Stack
from bench.wrk import WrkError, WrkResult, run_wrk
from bench.ws_client import percentile

if TYPE_CHECKING:  # bench.data imports Django models: only after django.setup()
    from bench.data import Fixture

SETTLE_TIMEOUT = 600
# Below this (percent of one core, all stack processes together) the stack counts as idle.
IDLE_CPU_PERCENT = 15.0


@dataclass(frozen=True)
class Http:
    key: str
    scenario: str
    method: str
    path: str
    min_ratio: float | None  # None: the ceiling itself
    expect: frozenset[int] = frozenset({200})
    ids: bool = False  # {id} is a random line of the live-sessions file
    body: dict | None = None
    headers: dict[str, str] = field(default_factory=dict)


def http_scenarios(fx: "Fixture", params: Params, etag: str) -> list[Http]:
    json_body = {"Content-Type": "application/json"}
    return [
        Http(
            "heartbeat_eliza",
            "POST /api/messaging/sessions/{id}/heartbeat",
            "POST",
            "/api/messaging/sessions/{id}/heartbeat",
            0.5,
            ids=True,
        ),
        Http(
            "heartbeat_v1",
            "POST /api/v1/sessions/{id}/heartbeat",
            "POST",
            "/api/v1/sessions/{id}/heartbeat",
            0.5,
            ids=True,
        ),
        Http(
            "session_read_eliza",
            "GET /api/messaging/sessions/{id}",
            "GET",
            "/api/messaging/sessions/{id}",
            0.5,
            ids=True,
        ),
        Http(
            "agent_304",
            "GET /api/v1/agents/{id}, If-None-Match matching (304)",
            "GET",
            f"/api/v1/agents/{fx.reader_agent}",
            0.7,
            expect=frozenset({304}),
            headers={"If-None-Match": etag},
        ),
        Http(
            "agent_200",
            "GET /api/v1/agents/{id} (200)",
            "GET",
            f"/api/v1/agents/{fx.reader_agent}",
            0.4,
        ),
        Http(
            "session_create_eliza",
            "POST /api/messaging/sessions (create)",
            "POST",
            "/api/messaging/sessions",
            0.15,
            expect=frozenset({201}),
            body={"agentId": fx.session_agent, "userId": "{uuid}"},
            headers=json_body,
        ),
        Http(
            "channel_post",
            "POST /api/v1/channels/{id}/messages (one running agent)",
            "POST",
            f"/api/v1/channels/{fx.post_channel}/messages",
            0.15,
            expect=frozenset({201}),
            body={"sender_id": "bench-user", "content": "Where do we stand? {uuid}"},
            headers=json_body,
        ),
        Http(
            "history_small",
            f"GET /api/v1/channels/{{id}}/messages?limit=50, {params.history_small:,} messages",
            "GET",
            f"/api/v1/channels/{fx.history_small_channel}/messages?limit=50",
            0.1,
        ),
        Http(
            "history_large",
            f"GET /api/v1/channels/{{id}}/messages?limit=50, {params.history_large:,} messages",
            "GET",
            f"/api/v1/channels/{fx.history_large_channel}/messages?limit=50",
            0.1,
        ),
        Http(
            "session_message",
            "POST /api/v1/sessions/{id}/message (synchronous, builtin provider)",
            "POST",
            "/api/v1/sessions/{id}/message",
            0.08,
            ids=True,
            body={"content": "What should we focus on next? {uuid}"},
            headers=json_body,
        ),
    ]


CEILING = Http("ceiling", "GET /bench/ceiling (the ceiling)", "GET", "/bench/ceiling", None)


class Runner:
    def __init__(self, *, stack: Stack, fixture: "Fixture", params: Params, log) -> None:
        self.stack = stack
        self.fx = fixture
        self.params = params
        self.log = log
        self.auth = {"X-API-KEY": fixture.api_key}
        self.redis = redis.Redis.from_url(stack.env["REDIS_URL"])

    # --- HTTP through wrk --------------------------------------------------------------------

    def settle(self) -> None:
        """Start every measurement on an idle stack: the worker has finished what earlier
        scenarios queued (agent replies), and no stack process is still busy (the ws process
        may be draining a fan-out's backlog long after its clients left)."""
        deadline = time.monotonic() + SETTLE_TIMEOUT
        waited = False
        while time.monotonic() < deadline:
            queued = self.redis.llen("celery")
            unacked = self.redis.hlen("unacked")
            if not queued and not unacked:
                break
            if not waited:
                self.log(f"waiting for the worker: {queued} queued, {unacked} running")
                waited = True
            time.sleep(0.5)
        quiet = 0
        while time.monotonic() < deadline and quiet < 2:
            busy = self._stack_cpu(0.5)
            quiet = quiet + 1 if busy < IDLE_CPU_PERCENT else 0
        if quiet < 2:
            self.log("the stack did not go idle before the settle timeout; measuring anyway")
        time.sleep(0.5)

    def _stack_cpu(self, interval: float) -> float:
        """CPU use of every stack process over `interval`, in percent of one core."""
        processes = []
        for pid in (p for pids in self.stack.pids().values() for p in pids):
            with contextlib.suppress(psutil.Error):
                process = psutil.Process(pid)
                process.cpu_percent(None)
                processes.append(process)
        time.sleep(interval)
        total = 0.0
        for process in processes:
            with contextlib.suppress(psutil.Error):
                total += process.cpu_percent(None)
        return total

    def _wrk(self, spec: Http, duration: float) -> WrkResult:
        body = json.dumps(spec.body) if spec.body is not None else None
        return run_wrk(
            url=self.stack.api_url,
            method=spec.method,
            path=spec.path,
            duration=duration,
            connections=self.params.connections,
            threads=self.params.threads,
            headers={**self.auth, **spec.headers},
            ids_file=self.fx.sessions_file if spec.ids else None,
            body=body,
        )

    def http(self, spec: Http, key: str | None = None, scenario: str | None = None) -> Row:
        row = Row(key=key or spec.key, scenario=scenario or spec.scenario)
        if spec.min_ratio is not None:
            row.budget = f"ratio ≥ {spec.min_ratio}"
        self.settle()
        try:
            self._wrk(spec, self.params.warmup)
            results = []
            for _ in range(self.params.runs):
                results.append(self._wrk(spec, self.params.duration))
        except WrkError as exc:
            row.errors = 1
            row.error_detail = str(exc)[:300]
            return row
        row.runs = [r.as_dict() for r in results]
        row.rps = median([r.rps for r in results])
        row.p50_ms = median([r.p50_ms for r in results])
        row.p99_ms = median([r.p99_ms for r in results])
        unexpected: dict[int, int] = {}
        sockets: dict[str, int] = {}
        for r in results:
            for status, n in r.unexpected(spec.expect).items():
                unexpected[status] = unexpected.get(status, 0) + n
            for kind, n in r.socket_errors.items():
                sockets[kind] = sockets.get(kind, 0) + n
        row.errors = sum(unexpected.values()) + sum(sockets.values())
        details = [f"{n}x HTTP {s}" for s, n in sorted(unexpected.items())]
        details += [f"{n}x socket {k}" for k, n in sorted(sockets.items())]
        row.error_detail = ", ".join(details)
        if unexpected:
            row.extra["sample_response"] = self._sample(spec)
        self.log(
            f"{row.scenario}: {row.rps:,.0f} rps, p50 {row.p50_ms} ms, p99 {row.p99_ms} ms"
            + (f", ERRORS {row.error_detail}" if row.errors else "")
        )
        return row

    def _request(self, spec: Http, client: httpx.Client | None = None) -> httpx.Response:
        path = spec.path
        if spec.ids:
            path = path.replace("{id}", random.choice(self._ids()))  # noqa: S311 - load, not keys
        body = json.dumps(spec.body).replace("{uuid}", str(uuid.uuid4())) if spec.body else None
        return (client or httpx).request(
            spec.method,
            self.stack.api_url + path,
            content=body,
            headers={**self.auth, **spec.headers},
            timeout=60,
        )

    def _ids(self) -> list[str]:
        if not hasattr(self, "_id_list"):
            self._id_list = self.fx.sessions_file.read_text().split()
        return self._id_list

    def _sample(self, spec: Http) -> str:
        """One request made by hand, to show what an unexpected status said."""
        try:
            response = self._request(spec)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        return f"{response.status_code} {response.text[:300]}"

    def prime(self, specs: list[Http]) -> None:
        """Before anything is measured: every request shape, from as many connections as
        wrk uses, until every api worker process and thread has served each one (imports,
        database connections, the LLM router: the first request of a worker is slow)."""
        width = self.params.connections

        def burst(spec: Http) -> None:
            with httpx.Client() as client:
                for _ in range(2):
                    self._request(spec, client)

        for spec in specs:
            with ThreadPoolExecutor(max_workers=width) as pool:
                for future in [pool.submit(burst, spec) for _ in range(width)]:
                    try:
                        future.result()
                    except httpx.HTTPError as exc:
                        self.log(f"priming {spec.key}: {type(exc).__name__}: {exc}")

    # --- WebSocket ------------------------------------------------------------------------------

    def _client(self, mode: str, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.ws_client",
                mode,
                "--url",
                self.stack.ws_url,
                "--token",
                self.fx.api_key,
                *args,
            ],
            cwd=BASE_DIR,
            stdout=subprocess.PIPE,
            text=True,
        )

    @staticmethod
    def _result(process: subprocess.Popen[str], timeout: float) -> dict:
        out, _ = process.communicate(timeout=timeout)
        for line in reversed(out.splitlines()):
            if line.startswith('{"result"'):
                return json.loads(line)["result"]
        raise RuntimeError(f"the WebSocket client printed no result (exit {process.returncode})")

    def ws_probe(self) -> str | None:
        """None when /v1/ws works (connect, authenticate, subscribe); else why not."""
        process = self._client("probe", "--channel", self.fx.fanout_channel)
        try:
            result = self._result(process, 60)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            process.kill()
            return str(exc)
        return None if result.get("ok") else result.get("error", "unknown error")

    def fanout(self, sockets: int, *, largest: bool) -> Row:
        p = self.params
        row = Row(
            key=f"ws_fanout_{sockets}",
            scenario=f"WebSocket fan-out: 1 new_message / {p.ws_interval * 1000:.0f} ms "
            f"({p.ws_events} events) to {sockets:,} sockets",
            budget="p99 ≤ 60 ms, all delivered" if largest else "all delivered",
        )
        p50s, p99s = [], []
        delivered = expected = 0
        problems: list[str] = []
        for run in range(p.runs):
            self.settle()
            try:
                result = self._fanout_run(sockets, run)
            except (RuntimeError, subprocess.TimeoutExpired, httpx.HTTPError) as exc:
                problems.append(str(exc)[:200])
                continue
            latencies = result["latencies_ms"]
            p50s.append(percentile(latencies, 50))
            p99s.append(percentile(latencies, 99))
            delivered += result["delivered"]
            expected += sockets * p.ws_events
            row.runs.append(
                {k: v for k, v in result.items() if k != "latencies_ms"}
                | {
                    "p50_ms": percentile(latencies, 50),
                    "p90_ms": percentile(latencies, 90),
                    "p99_ms": percentile(latencies, 99),
                    "max_ms": max(latencies) if latencies else None,
                }
            )
            problems += result["connect_errors"] + result["socket_errors"] + result["post_errors"]
        row.p50_ms = median(p50s)
        row.p99_ms = median(p99s)
        row.other = f"delivered {delivered:,}/{expected:,}"
        lost = expected - delivered
        row.errors = len(problems) + (lost if lost > 0 else 0)
        if problems or lost:
            row.error_detail = "; ".join(
                ([f"{lost} events not delivered"] if lost else []) + problems[:3]
            )
        if not row.runs:
            row.not_measured = row.error_detail or "no run completed"
            return row
        row.passed = (row.p99_ms is not None and row.p99_ms <= 60) if largest else True
        row.passed = row.passed and lost == 0
        self.log(
            f"{row.scenario}: p50 {row.p50_ms} ms, p99 {row.p99_ms} ms, {row.other}"
            + (f", ERRORS {row.error_detail}" if row.errors else "")
        )
        return row

    def _fanout_run(self, sockets: int, run: int) -> dict:
        p = self.params
        tag = f"{uuid.uuid4().hex[:8]}r{run}"
        per_client = max(1, p.ws_sockets_per_client)
        clients = math.ceil(sockets / per_client)
        shares = [sockets // clients + (1 if i < sockets % clients else 0) for i in range(clients)]
        deadline = 60 + p.ws_events * p.ws_interval + 20
        processes = [
            self._client(
                "fanout",
                "--channel",
                self.fx.fanout_channel,
                "--sockets",
                str(share),
                "--events",
                str(p.ws_events),
                "--tag",
                tag,
                "--deadline",
                str(deadline),
            )
            for share in shares
        ]
        try:
            for process in processes:
                ready = json.loads(process.stdout.readline() or "{}")
                if not ready.get("ready"):
                    raise RuntimeError("a WebSocket client did not get ready")
            post_errors = self._post_fanout_events(tag)
            results = [self._result(process, deadline + 60) for process in processes]
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
        merged: dict = {
            "connected": 0,
            "connect_errors": [],
            "socket_errors": [],
            "delivered": 0,
            "duplicates": 0,
            "latencies_ms": [],
            "post_errors": post_errors,
        }
        for result in results:
            merged["connected"] += result["connected"]
            merged["connect_errors"] += result["connect_errors"]
            merged["socket_errors"] += result["socket_errors"]
            merged["delivered"] += result["delivered"]
            merged["duplicates"] += result["duplicates"]
            merged["latencies_ms"] += result["latencies_ms"]
        return merged

    def _post_fanout_events(self, tag: str) -> list[str]:
        p = self.params
        url = f"{self.stack.api_url}/api/v1/channels/{self.fx.fanout_channel}/messages"
        errors = []
        with httpx.Client(headers=self.auth, timeout=10) as client:
            client.get(f"{self.stack.api_url}/healthz")  # open the connection first
            start = time.monotonic() + 0.5
            for seq in range(p.ws_events):
                time.sleep(max(0.0, start + seq * p.ws_interval - time.monotonic()))
                content = f"fanout {tag} {seq} {time.time():.6f}"
                response = client.post(url, json={"sender_id": "bench-user", "content": content})
                if response.status_code != 201:
                    errors.append(f"POST answered {response.status_code}")
        return errors

    def resume(self) -> Row:
        p = self.params
        fx = self.fx
        row = Row(
            key="ws_resume",
            scenario=f"WebSocket resume: replay of {fx.resume_expected:,} missed events",
            budget="≥ 5,000 events/s, all replayed",
        )
        self.settle()
        process = self._client(
            "resume",
            "--channel",
            fx.resume_channel,
            "--after",
            str(fx.resume_from),
            "--expected",
            str(fx.resume_expected),
            "--runs",
            str(p.runs),
        )
        try:
            result = self._result(process, 600)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            process.kill()
            row.not_measured = str(exc)[:200]
            return row
        row.runs = result["runs"]
        if result.get("error"):
            row.errors = 1
            row.error_detail = result["error"]
        short = [r for r in row.runs if r["replayed"] != fx.resume_expected]
        if short:
            row.errors += len(short)
            row.error_detail = "; ".join(
                filter(None, [row.error_detail, f"replayed {short[0]['replayed']} events"])
            )
        rate = median([r["events_per_second"] for r in row.runs])
        if rate is None:
            row.not_measured = row.error_detail or "no run completed"
            return row
        row.other = f"{rate:,.0f} events/s"
        row.extra["events_per_second"] = rate
        row.passed = rate >= 5000 and not row.errors
        self.log(f"{row.scenario}: {row.other}")
        return row

    def e2e(self) -> Row:
        p = self.params
        row = Row(
            key="e2e_reply",
            scenario="End-to-end agent reply (user message committed → reply event on a "
            "socket), idle system",
            budget="p50 < 50 ms, p99 < 150 ms",
        )
        p50s, p99s, errors = [], [], []
        for _ in range(p.runs):
            self.settle()
            process = self._client(
                "e2e",
                "--api",
                self.stack.api_url,
                "--channel",
                self.fx.e2e_channel,
                "--samples",
                str(p.e2e_samples),
                "--gap",
                str(p.e2e_gap),
            )
            try:
                result = self._result(process, 60 + p.e2e_samples * 35)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                process.kill()
                errors.append(str(exc)[:200])
                continue
            latencies = result["latencies_ms"]
            errors += result["errors"]
            if latencies:
                p50s.append(percentile(latencies, 50))
                p99s.append(percentile(latencies, 99))
            row.runs.append(
                {
                    "samples": result["samples"],
                    "answered": len(latencies),
                    "p50_ms": percentile(latencies, 50),
                    "p99_ms": percentile(latencies, 99),
                    "max_ms": max(latencies) if latencies else None,
                    "errors": result["errors"][:3],
                }
            )
        row.errors = len(errors)
        row.error_detail = "; ".join(errors[:3])
        row.p50_ms = median(p50s)
        row.p99_ms = median(p99s)
        if row.p50_ms is None:
            row.not_measured = row.error_detail or "no sample completed"
            return row
        row.passed = row.p50_ms < 50 and row.p99_ms < 150 and not row.errors
        self.log(f"{row.scenario}: p50 {row.p50_ms:.1f} ms, p99 {row.p99_ms:.1f} ms")
        return row


def sweep_rows(results: dict[int, dict], params: Params) -> list[Row]:
    """Two rows: D due among the small total (reference) and among the large one (budget).
    A run abandoned at the timeout reports how far it got and its rate; runs after it are
    skipped (they would end the same way)."""
    small, large = params.sweep_totals
    due = params.sweep_due
    rows = []
    seconds: dict[int, float | None] = {}
    rates: dict[int, float | None] = {}
    for total in (small, large):
        result = results.get(total) or {"error": "not run"}
        row = Row(key=f"sweep_{total}", scenario=f"Session sweep: {due:,} due among {total:,}")
        seconds[total] = rates[total] = None
        rows.append(row)
        if result.get("error"):
            row.not_measured = result["error"][:300]
            continue
        row.runs = result["runs"]
        failed = [r for r in row.runs if r.get("error")]
        done = [r for r in row.runs if not r.get("error") and not r.get("timed_out")]
        timed_out = [r for r in row.runs if r.get("timed_out")]
        wrong = [r for r in done if r["expired"] != due]
        if failed or wrong:
            row.errors = len(failed) + len(wrong)
            row.error_detail = failed[0]["error"] if failed else f"expired {wrong[0]['expired']}"
        if done:
            seconds[total] = median([r["seconds"] for r in done])
            rates[total] = due / seconds[total] if seconds[total] else None
            row.other = f"{seconds[total]:.3f} s" + (
                f" ({len(done)} run{'s' if len(done) > 1 else ''})"
                if len(done) < params.runs
                else ""
            )
        elif timed_out:
            run = timed_out[0]
            rates[total] = run["expired"] / run["seconds"] if run["seconds"] else None
            row.other = (
                f"> {run['seconds']:.0f} s: abandoned, {run['expired']:,} of {due:,} expiries "
                f"committed (≈ {rates[total] or 0:,.0f}/s; 1 run)"
            )
    small_row, large_row = rows
    small_row.budget = "reference"
    large_row.budget = f"< 3 s and ≤ 1.2 x the {small:,} figure"
    if seconds[small] is not None and seconds[large] is not None:
        factor = seconds[large] / seconds[small]
        large_row.other += f"; x{factor:.2f} the {small:,} figure"
        large_row.extra["factor"] = round(factor, 3)
        large_row.passed = seconds[large] < 3 and factor <= 1.2 and not large_row.errors
    elif seconds[large] is None and rates[large] is not None:
        large_row.passed = False  # abandoned at the timeout: far past 3 s
    return rows


def run_sweep(total: int, params: Params, env: dict[str, str], log) -> dict:
    log(f"session sweep: {params.sweep_due:,} due among {total:,} (setup reused when present)")
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.sweep",
            "--total",
            str(total),
            "--due",
            str(params.sweep_due),
            "--runs",
            str(params.runs),
            "--timeout",
            str(params.sweep_timeout),
        ],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if process.returncode != 0:
        return {"error": f"bench.sweep failed: {process.stderr.strip()[-300:]}"}
    for line in process.stderr.splitlines():
        log(line)
    result = json.loads(process.stdout.strip().splitlines()[-1])
    log(
        f"session sweep among {total:,}: "
        + ", ".join(
            f"{r['seconds']:.3f} s" + (" (abandoned)" if r.get("timed_out") else "")
            for r in result["runs"]
        )
    )
    return result

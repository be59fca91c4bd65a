"""The scenarios: what each one sends, what it expects back, and its budget.

Every HTTP row is measured interleaved with its yardsticks (bench/README.md): for each run,
ours, then the bare framework ceiling (bench/bare.py), then the peer (bench/peer.py, with
`--peer elizaos`) when the row compares with it.
"""

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
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import psutil
import redis

from bench.environment import BASE_DIR
from bench.params import Params
from bench.report import Row, median
from bench.stack import BARE_PATH, Stack
from bench.wrk import WrkError, WrkResult, run_wrk
from bench.ws_client import percentile

if TYPE_CHECKING:  # bench.data imports Django models: only after django.setup()
    from bench.data import Fixture
    from bench.data_yardstick import YardstickFixture

SETTLE_TIMEOUT = 600
# Below this (percent of one core, all stack processes together) the stack counts as idle.
IDLE_CPU_PERCENT = 15.0


# What a row says when a budget compares with the peer and the peer did not run.
NO_PEER = "no peer"


@dataclass(frozen=True)
class Http:
    """One request shape. Budgets: `vs_bare` (ours ≥ vs_bare x the bare ceiling, same row)
    and `vs_peer` (ours ≥ vs_peer x the peer's `peer_key` request, same row)."""

    key: str
    scenario: str
    method: str
    path: str
    vs_bare: float | None = None
    vs_peer: float | None = None
    peer_key: str | None = None  # the peer's request measured in the same row
    expect: frozenset[int] = frozenset({200})
    ids_file: Path | None = None  # {id} is a random line of this file
    body: dict | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def budget(self) -> str:
        parts = []
        if self.vs_bare is not None:
            parts.append(f"≥ {self.vs_bare:g} x bare")
        if self.vs_peer is not None:
            parts.append(f"≥ {self.vs_peer:g} x ElizaOS")
        return ", ".join(parts)


@dataclass(frozen=True)
class Load:
    """What one wrk run sends, to whichever server: ours, the bare ceiling or the peer."""

    url: str
    method: str
    path: str
    headers: dict[str, str]
    expect: frozenset[int]
    ids_file: Path | None = None
    body: dict | None = None


def http_scenarios(fx: "Fixture", yx: "YardstickFixture", params: Params, etag: str) -> list[Http]:
    json_body = {"Content-Type": "application/json"}
    sessions = fx.sessions_file
    return [
        Http(
            "auth_floor",
            "GET /bench/ceiling: cheapest authenticated endpoint (API key, rate limit, policy)",
            "GET",
            "/bench/ceiling",
            vs_bare=0.7,
        ),
        Http(
            "heartbeat_eliza",
            "POST /api/messaging/sessions/{id}/heartbeat",
            "POST",
            "/api/messaging/sessions/{id}/heartbeat",
            vs_bare=0.4,
            peer_key="heartbeat_eliza",
            ids_file=sessions,
        ),
        Http(
            "heartbeat_v1",
            "POST /api/v1/sessions/{id}/heartbeat",
            "POST",
            "/api/v1/sessions/{id}/heartbeat",
            vs_bare=0.4,
            ids_file=sessions,
        ),
        Http(
            "session_read_eliza",
            "GET /api/messaging/sessions/{id}",
            "GET",
            "/api/messaging/sessions/{id}",
            vs_bare=0.5,
            peer_key="session_read_eliza",
            ids_file=sessions,
        ),
        Http(
            "agent_304",
            "GET /api/v1/agents/{id}, If-None-Match matching (304)",
            "GET",
            f"/api/v1/agents/{fx.reader_agent}",
            vs_bare=0.7,
            expect=frozenset({304}),
            headers={"If-None-Match": etag},
        ),
        Http(
            "agent_200",
            "GET /api/v1/agents/{id} (200)",
            "GET",
            f"/api/v1/agents/{fx.reader_agent}",
            vs_bare=0.5,
        ),
        Http(
            "session_create_eliza",
            "POST /api/messaging/sessions (create)",
            "POST",
            "/api/messaging/sessions",
            vs_peer=1.0,
            peer_key="session_create_eliza",
            expect=frozenset({201}),
            body={"agentId": fx.session_agent, "userId": "{uuid}"},
            headers=json_body,
        ),
        Http(
            "session_message_eliza",
            "POST /api/messaging/sessions/{id}/messages (default transport: reply by the worker)",
            "POST",
            "/api/messaging/sessions/{id}/messages",
            vs_peer=3.0,
            peer_key="session_message_eliza",
            expect=frozenset({201}),
            ids_file=sessions,
            body={"content": "What should we focus on next? {uuid}"},
            headers=json_body,
        ),
        Http(
            "channel_post",
            "POST /api/v1/channels/{id}/messages (one running agent member)",
            "POST",
            f"/api/v1/channels/{fx.post_channel}/messages",
            vs_bare=0.25,
            expect=frozenset({201}),
            body={"sender_id": "bench-user", "content": "Where do we stand? {uuid}"},
            headers=json_body,
        ),
        Http(
            "history_eliza",
            "GET /api/messaging/sessions/{id}/messages?limit=50",
            "GET",
            f"/api/messaging/sessions/{yx.history_session}/messages?limit=50",
            vs_peer=2.0,
            peer_key="history_eliza",
        ),
        Http(
            "history_small",
            f"GET /api/v1/channels/{{id}}/messages?limit=50, {params.history_small:,} messages",
            "GET",
            f"/api/v1/channels/{fx.history_small_channel}/messages?limit=50",
        ),
        Http(
            "history_large",
            f"GET /api/v1/channels/{{id}}/messages?limit=50, {params.history_large:,} messages",
            "GET",
            f"/api/v1/channels/{fx.history_large_channel}/messages?limit=50",
        ),
        Http(
            "session_message",
            "POST /api/v1/sessions/{id}/message (synchronous, builtin provider)",
            "POST",
            "/api/v1/sessions/{id}/message",
            ids_file=sessions,
            body={"content": "What should we focus on next? {uuid}"},
            headers=json_body,
        ),
    ]


def _summary(results: list[WrkResult], expect: frozenset[int]) -> dict:
    """Medians of the runs and every unexpected status or socket error."""
    unexpected: dict[int, int] = {}
    sockets: dict[str, int] = {}
    for r in results:
        for status, n in r.unexpected(expect).items():
            unexpected[status] = unexpected.get(status, 0) + n
        for kind, n in r.socket_errors.items():
            sockets[kind] = sockets.get(kind, 0) + n
    details = [f"{n}x HTTP {s}" for s, n in sorted(unexpected.items())]
    details += [f"{n}x socket {k}" for k, n in sorted(sockets.items())]
    return {
        "rps": median([r.rps for r in results]),
        "p50_ms": median([r.p50_ms for r in results]),
        "p99_ms": median([r.p99_ms for r in results]),
        "errors": sum(unexpected.values()) + sum(sockets.values()),
        "error_detail": ", ".join(details),
        "unexpected": bool(unexpected),
        "runs": [r.as_dict() for r in results],
    }


class Runner:
    def __init__(
        self,
        *,
        stack: Stack,
        fixture: "Fixture",
        yardstick: "YardstickFixture",
        params: Params,
        log,
    ) -> None:
        self.stack = stack
        self.fx = fixture
        self.yx = yardstick
        self.params = params
        self.log = log
        self.auth = {"X-API-KEY": fixture.api_key}
        self.redis = redis.Redis.from_url(stack.env["REDIS_URL"])
        # Set by __main__ when --peer runs: its processes count in the idle check, and the
        # rows that compare with it measure it. Otherwise `peer_reason` says why not.
        self.peer = None
        self.peer_reason = NO_PEER
        self.bare_runs: list[dict] = []  # every bare-ceiling run of the whole run

    # --- HTTP through wrk --------------------------------------------------------------------

    def settle(self) -> None:
        """Start every measurement on an idle machine: the worker has finished what earlier
        measurements queued (agent replies), and no process of our stack, of the bare ceiling
        or of the peer is still busy (the ws process may be draining a fan-out's backlog long
        after its clients left). The yardsticks are measured idle too: a busy machine would
        make them slower and our ratios better."""
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
        time.sleep(0.3)

    def _pids(self) -> list[int]:
        pids = [p for found in self.stack.pids().values() for p in found]
        if self.peer is not None:
            with contextlib.suppress(Exception):
                pids += list(self.peer.pids())
        return pids

    def _stack_cpu(self, interval: float) -> float:
        """CPU use of every measured process over `interval`, in percent of one core."""
        processes = []
        for pid in self._pids():
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

    def ours(self, spec: Http) -> Load:
        return Load(
            url=self.stack.api_url,
            method=spec.method,
            path=spec.path,
            headers={**self.auth, **spec.headers},
            expect=spec.expect,
            ids_file=spec.ids_file,
            body=spec.body,
        )

    def bare(self) -> Load:
        # The same headers as our requests (the API key is ignored there): same bytes sent.
        return Load(
            url=self.stack.bare_url,
            method="GET",
            path=BARE_PATH,
            headers=dict(self.auth),
            expect=frozenset({200}),
        )

    def peer_load(self, key: str | None) -> Load | None:
        if self.peer is None or key is None:
            return None
        spec = self._peer_specs().get(key)
        if spec is None:
            return None
        return Load(
            url=self.peer.base_url,
            method=spec.method,
            path=spec.path,
            headers=dict(spec.headers),
            expect=frozenset(spec.expect),
            ids_file=spec.ids_file,
            body=spec.body,
        )

    def _peer_specs(self) -> dict:
        if not hasattr(self, "_peer_spec_cache"):
            self._peer_spec_cache = self.peer.http_specs()
        return self._peer_spec_cache

    def _wrk(
        self,
        load: Load,
        duration: float,
        *,
        connections: int | None = None,
        threads: int | None = None,
    ) -> WrkResult:
        return run_wrk(
            url=load.url,
            method=load.method,
            path=load.path,
            duration=duration,
            connections=connections or self.params.connections,
            threads=threads or self.params.threads,
            headers=load.headers,
            ids_file=load.ids_file,
            body=json.dumps(load.body) if load.body is not None else None,
        )

    def warm_bare(self) -> None:
        """The bare ceiling is the same request for every row: warmed up once."""
        self.settle()
        try:
            self._wrk(self.bare(), self.params.warmup)
        except WrkError as exc:
            self.log(f"bare ceiling warm-up: {exc}")

    def http(self, spec: Http) -> Row:
        """Interleaved: for each run, ours, then the bare ceiling, then the peer (when this
        row compares with it), each after the machine went idle; the three columns of a row
        share the same minutes."""
        p = self.params
        row = Row(key=spec.key, scenario=spec.scenario, budget=spec.budget)
        loads = {"ours": self.ours(spec), "bare": self.bare()}
        peer = self.peer_load(spec.peer_key)
        if peer is not None:
            loads["peer"] = peer
        results: dict[str, list[WrkResult]] = {name: [] for name in loads}
        failures: dict[str, str] = {}
        for name in ("ours", "peer"):  # warm-up (unrecorded); the bare one was warmed once
            if name in loads:
                self.settle()
                try:
                    self._wrk(loads[name], p.warmup)
                except WrkError as exc:
                    failures[name] = str(exc)[:300]
        for _ in range(p.runs):
            for name, load in loads.items():
                if name in failures:
                    continue
                self.settle()
                try:
                    results[name].append(self._wrk(load, p.duration))
                except WrkError as exc:
                    failures[name] = str(exc)[:300]
        if "ours" in failures or not results["ours"]:
            row.errors = 1
            row.error_detail = failures.get("ours", "no run completed")
            return row
        ours = _summary(results["ours"], spec.expect)
        row.runs = ours["runs"]
        row.rps, row.p50_ms, row.p99_ms = ours["rps"], ours["p50_ms"], ours["p99_ms"]
        row.errors, row.error_detail = ours["errors"], ours["error_detail"]
        if ours["unexpected"]:
            row.extra["sample_response"] = self._sample(spec)
        bare = _summary(results["bare"], frozenset({200})) if results["bare"] else None
        if bare is not None and not bare["errors"]:
            row.bare_rps = bare["rps"]
            row.extra["bare_runs"] = bare["runs"]
            self.bare_runs += bare["runs"]
        else:
            row.extra["bare_error"] = failures.get("bare") or (bare or {}).get("error_detail")
        if "peer" in loads:
            theirs = _summary(results["peer"], loads["peer"].expect) if results["peer"] else None
            if theirs is not None and not theirs["errors"]:
                row.peer_rps = theirs["rps"]
                row.peer_p50_ms, row.peer_p99_ms = theirs["p50_ms"], theirs["p99_ms"]
                row.extra["peer_runs"] = theirs["runs"]
            else:
                problem = failures.get("peer") or (theirs or {}).get("error_detail")
                row.extra["peer_error"] = problem
                row.other = f"peer not measured: {str(problem)[:120]}"
        self._judge_http(spec, row)
        self.log(
            f"{row.scenario}: {row.rps:,.0f} rps (p50 {row.p50_ms} ms, p99 {row.p99_ms} ms); "
            f"bare {_rps(row.bare_rps)}; peer {_rps(row.peer_rps)}"
            + (f", ERRORS {row.error_detail}" if row.errors else "")
            + (
                f"; peer not measured: {row.extra['peer_error']}"
                if "peer_error" in row.extra
                else ""
            )
            + (
                f"; bare not measured: {row.extra['bare_error']}"
                if "bare_error" in row.extra
                else ""
            )
        )
        return row

    def _judge_http(self, spec: Http, row: Row) -> None:
        if row.rps and row.bare_rps:
            row.vs_bare = row.rps / row.bare_rps
        if row.rps and row.peer_rps:
            row.vs_peer = row.rps / row.peer_rps
        checks: list[bool] = []
        if spec.vs_bare is not None:
            if row.vs_bare is None:
                row.budget_unmeasured = f"bare ceiling: {row.extra.get('bare_error')}"
            else:
                checks.append(row.vs_bare >= spec.vs_bare)
        if spec.vs_peer is not None:
            if row.vs_peer is not None:
                checks.append(row.vs_peer >= spec.vs_peer)
            elif self.peer is None:
                row.budget_unmeasured = self.peer_reason
            else:
                reason = row.extra.get("peer_error") or f"no {spec.peer_key} request"
                row.budget_unmeasured = f"peer: {reason}"
        if checks and not row.budget_unmeasured:
            row.passed = all(checks) and not row.errors

    def writers(self) -> Row:
        """`writers` connections, each posting to a channel of its own (one wrk process with
        one connection per channel), against one connection posting to one channel; interleaved
        run by run. The ratio says whether writes to different channels wait for each other."""
        p = self.params
        n = len(self.yx.writer_channels)
        row = Row(
            key="writers",
            scenario=f"{n} concurrent writers: POST /api/v1/channels/{{id}}/messages, one "
            "channel per connection, vs one writer",
            budget="≥ 3 x one writer",
        )

        def load(channel: str) -> Load:
            return Load(
                url=self.stack.api_url,
                method="POST",
                path=f"/api/v1/channels/{channel}/messages",
                headers={**self.auth, "Content-Type": "application/json"},
                expect=frozenset({201}),
                body={"sender_id": "bench-writer", "content": "Writer {uuid}"},
            )

        loads = [load(channel) for channel in self.yx.writer_channels]

        def together(duration: float) -> list[WrkResult]:
            with ThreadPoolExecutor(max_workers=n) as pool:
                futures = [
                    pool.submit(self._wrk, one, duration, connections=1, threads=1) for one in loads
                ]
                return [future.result() for future in futures]

        ones: list[WrkResult] = []
        manys: list[list[WrkResult]] = []
        try:
            self.settle()
            together(p.warmup)
            for _ in range(p.runs):
                self.settle()
                ones.append(self._wrk(loads[0], p.duration, connections=1, threads=1))
                self.settle()
                manys.append(together(p.duration))
        except WrkError as exc:
            row.errors = 1
            row.error_detail = str(exc)[:300]
            return row
        one = _summary(ones, frozenset({201}))
        many = [_summary(results, frozenset({201})) for results in manys]
        rps_many = [sum(r.rps for r in results) for results in manys]
        row.rps = median(rps_many)
        row.p50_ms = median([s["p50_ms"] for s in many])
        row.p99_ms = median([max(r.p99_ms for r in results) for results in manys])
        row.errors = one["errors"] + sum(s["errors"] for s in many)
        row.error_detail = ", ".join(
            filter(None, [one["error_detail"], *(s["error_detail"] for s in many)])
        )
        row.runs = [
            {"writers": n, "rps": round(rps, 1), "per_writer": s["runs"]}
            for rps, s in zip(rps_many, many, strict=True)
        ]
        row.extra["one_writer_rps"] = one["rps"]
        row.extra["one_writer_runs"] = one["runs"]
        if one["rps"] and row.rps:
            factor = row.rps / one["rps"]
            row.extra["factor"] = round(factor, 3)
            row.other = f"x{factor:.2f} one writer ({one['rps']:,.0f} rps)"
            row.passed = factor >= 3 and not row.errors
        self.log(f"{row.scenario}: {row.rps:,.0f} rps, {row.other}")
        return row

    def _request(self, spec: Http, client: httpx.Client | None = None) -> httpx.Response:
        path = spec.path
        if spec.ids_file is not None:
            ids = self._ids(spec.ids_file)
            path = path.replace("{id}", random.choice(ids))  # noqa: S311 - load, not keys
        body = json.dumps(spec.body).replace("{uuid}", str(uuid.uuid4())) if spec.body else None
        return (client or httpx).request(
            spec.method,
            self.stack.api_url + path,
            content=body,
            headers={**self.auth, **spec.headers},
            timeout=60,
        )

    def _ids(self, path: Path) -> list[str]:
        if not hasattr(self, "_id_lists"):
            self._id_lists: dict[Path, list[str]] = {}
        if path not in self._id_lists:
            self._id_lists[path] = path.read_text().split()
        return self._id_lists[path]

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

    def fanout_client(self) -> tuple[object | None, str]:
        """The Node.js client (bench/fanout_node.py, the same design as the peer's) when it
        can run, else None and why (the Python client is then used for ours). Asked once."""
        if hasattr(self, "_fanout_client"):
            return self._fanout_client
        self._fanout_client = self._find_fanout_client()
        return self._fanout_client

    def _find_fanout_client(self) -> tuple[object | None, str]:
        try:
            from bench import fanout_node
        except ImportError as exc:
            return None, f"bench/fanout_node.py unavailable ({exc})"
        try:
            problem = fanout_node.node_available()
        except Exception as exc:  # noqa: BLE001 - the other side's code: reported
            problem = f"node_available() failed: {type(exc).__name__}: {exc}"
        return (None, problem) if problem else (fanout_node, "")

    def fanout(self, sockets: int, *, largest: bool) -> Row:
        """Interleaved run by run: ours, then the peer's (same event count and interval, the
        same client design), each after the machine went idle."""
        p = self.params
        node, node_problem = self.fanout_client()
        client = "Node.js ws" if node else "Python websockets"
        row = Row(
            key=f"ws_fanout_{sockets}",
            scenario=f"WebSocket fan-out: 1 new_message / {p.ws_interval * 1000:.0f} ms "
            f"({p.ws_events} events) to {sockets:,} sockets ({client} client)",
            budget="p99 ≤ 0.8 x ElizaOS's, 100 % delivered" if largest else "100 % delivered",
        )
        if node is None:
            row.extra["client_note"] = f"Python client: {node_problem}"
        deadline = 60 + p.ws_events * p.ws_interval + 20
        ours: list[dict] = []
        theirs: list[dict] = []
        problems: list[str] = []
        peer_problems: list[str] = []
        for run in range(p.runs):
            self.settle()
            try:
                if node is not None:
                    result = node.run_fanout(
                        target="ours",
                        sockets=sockets,
                        events=p.ws_events,
                        interval=p.ws_interval,
                        deadline=deadline,
                        ws_url=self.stack.ws_url,
                        api_url=self.stack.api_url,
                        api_key=self.fx.api_key,
                        channel_id=self.fx.fanout_channel,
                    )
                else:
                    result = self._fanout_python(sockets, run)
                ours.append(result)
                problems += _client_errors(result)
            except Exception as exc:  # noqa: BLE001 - a failed run is reported in the row
                problems.append(f"{type(exc).__name__}: {str(exc)[:200]}")
            if self.peer is not None:
                self.settle()
                try:
                    theirs.append(self.peer.fanout(sockets, p.ws_events, p.ws_interval, deadline))
                except Exception as exc:  # noqa: BLE001 - the peer's failure: reported
                    peer_problems.append(f"{type(exc).__name__}: {str(exc)[:200]}")
        row.runs = ours
        delivered = sum(r.get("delivered", 0) for r in ours)
        expected = sum(r.get("expected", sockets * p.ws_events) for r in ours)
        lost = expected - delivered
        row.p50_ms = median([r.get("p50_ms") for r in ours])
        row.p99_ms = median([r.get("p99_ms") for r in ours])
        row.other = f"delivered {delivered:,}/{expected:,}"
        row.errors = len(problems) + max(lost, 0)
        if problems or lost > 0:
            row.error_detail = "; ".join(
                ([f"{lost} events not delivered"] if lost > 0 else []) + problems[:3]
            )
        if theirs:
            row.extra["peer_runs"] = theirs
            row.peer_p50_ms = median([r.get("p50_ms") for r in theirs])
            row.peer_p99_ms = median([r.get("p99_ms") for r in theirs])
            peer_delivered = sum(r.get("delivered", 0) for r in theirs)
            peer_expected = sum(r.get("expected", sockets * p.ws_events) for r in theirs)
            row.other += f"; peer {peer_delivered:,}/{peer_expected:,}"
        if peer_problems:
            row.extra["peer_error"] = "; ".join(peer_problems[:3])
            row.other += f"; peer failed: {peer_problems[0][:120]}"
        if node is None:
            row.other += "; Python client (node: " + node_problem + ")"
        if not ours:
            row.not_measured = row.error_detail or "no run completed"
            return row
        if row.p99_ms and row.peer_p99_ms:
            row.vs_peer = row.p99_ms / row.peer_p99_ms  # lower is better here
        if not largest:
            row.passed = lost <= 0
        elif row.vs_peer is not None:
            row.passed = row.vs_peer <= 0.8 and lost <= 0
        elif self.peer is None:
            row.budget_unmeasured = self.peer_reason
        else:
            row.budget_unmeasured = f"peer: {row.extra.get('peer_error') or 'no p99'}"
        self.log(
            f"{row.scenario}: p50 {row.p50_ms} ms, p99 {row.p99_ms} ms; peer p50 "
            f"{row.peer_p50_ms} ms, p99 {row.peer_p99_ms} ms; {row.other}"
            + (f", ERRORS {row.error_detail}" if row.errors else "")
        )
        return row

    def _fanout_python(self, sockets: int, run: int) -> dict:
        """The Python client's run in the Node.js client's result shape."""
        result = self._fanout_run(sockets, run)
        latencies = result.pop("latencies_ms")
        return {
            **result,
            "sockets": sockets,
            "expected": sockets * self.params.ws_events,
            "events": self.params.ws_events,
            "p50_ms": percentile(latencies, 50),
            "p90_ms": percentile(latencies, 90),
            "p99_ms": percentile(latencies, 99),
            "max_ms": max(latencies) if latencies else None,
            "client": "python",
        }

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
            budget="p50 < 30 ms, p99 < 100 ms",
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
        row.passed = row.p50_ms < 30 and row.p99_ms < 100 and not row.errors
        self.log(f"{row.scenario}: p50 {row.p50_ms:.1f} ms, p99 {row.p99_ms:.1f} ms")
        return row


def sweep_rows(results: dict[int, dict], params: Params) -> list[Row]:
    """Two rows: D due among the small total (reference) and among the large one (budget;
    the factor between the two is shown, not budgeted).
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
    large_row.budget = "< 3 s"
    if seconds[small] is not None and seconds[large] is not None:
        factor = seconds[large] / seconds[small]
        large_row.other += f"; x{factor:.2f} the {small:,} figure"
        large_row.extra["factor"] = round(factor, 3)
    if seconds[large] is not None:
        large_row.passed = seconds[large] < 3 and not large_row.errors
    elif rates[large] is not None:
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


def _client_errors(result: dict) -> list[str]:
    """A fan-out run's failed connections, dropped sockets and failed POSTs, either client."""
    keys = ("connect_errors", "socket_errors", "post_errors", "errors")
    return [str(e) for key in keys for e in result.get(key) or []]


def _rps(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} rps"

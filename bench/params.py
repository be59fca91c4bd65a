"""Run parameters: how long, how often, and how big each scenario's data set is.

Two presets, `full` (the issue's sizes) and `quick` (a few seconds per scenario, small data,
for CI); every field can be overridden on the command line (`--set name=value`).
"""

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class Params:
    mode: str
    # Every figure is the median of `runs` measurements of `duration` seconds, each after an
    # unrecorded warm-up of `warmup` seconds (first run only).
    runs: int
    duration: float
    warmup: float
    connections: int  # wrk connections (closed loop: each waits for its answer)
    threads: int  # wrk threads
    writers: int  # concurrent writers: one wrk connection per channel, against one writer
    peer_sessions: int  # live sessions the peer (--peer) creates for its random-id requests
    # HTTP scenarios
    live_sessions: int  # heartbeat / session reads / session messages pick a random one
    agent_usage_rows: int  # usage-ledger rows behind GET /api/v1/agents/{id}
    history_small: int  # messages in the small history channel
    history_large: int  # ... and in the large one
    service_message_limit: int  # above this, history messages are bulk-created (README)
    # WebSocket scenarios
    ws_sockets: tuple[int, ...]  # fan-out sizes
    ws_events: int  # new_message events per fan-out run
    ws_interval: float  # seconds between them
    ws_sockets_per_client: int  # sockets per load-client process
    resume_events: int  # missed events replayed to a reconnecting client
    e2e_samples: int  # agent-reply latency samples per run
    e2e_gap: float  # idle seconds between samples
    # Session sweep
    sweep_due: int
    sweep_totals: tuple[int, ...]  # (small, large): the budget compares the two
    sweep_timeout: float  # a sweep run still going after this is abandoned (and reported)

    def with_overrides(self, overrides: list[str]) -> "Params":
        fields = {f.name: f for f in dataclasses.fields(self)}
        changes = {}
        for item in overrides:
            name, sep, raw = item.partition("=")
            if not sep or name not in fields or name == "mode":
                known = ", ".join(n for n in fields if n != "mode")
                raise SystemExit(f"error: --set expects NAME=VALUE with NAME one of: {known}")
            current = getattr(self, name)
            try:
                if isinstance(current, tuple):
                    changes[name] = tuple(int(v) for v in raw.split(",") if v)
                else:
                    changes[name] = type(current)(raw)
            except ValueError:
                raise SystemExit(f"error: --set {name}: {raw!r} is not a valid value") from None
        return dataclasses.replace(self, **changes)


FULL = Params(
    mode="full",
    runs=3,
    duration=8.0,
    warmup=3.0,
    connections=32,
    threads=2,
    writers=32,
    peer_sessions=1_000,
    live_sessions=10_000,
    agent_usage_rows=1_000,
    history_small=1_000,
    history_large=1_000_000,
    service_message_limit=20_000,
    ws_sockets=(100, 500, 1000),
    ws_events=20,
    ws_interval=0.25,
    ws_sockets_per_client=500,
    resume_events=20_000,
    e2e_samples=30,
    e2e_gap=0.3,
    sweep_due=100_000,
    sweep_totals=(200_000, 1_000_000),
    sweep_timeout=120.0,
)

QUICK = Params(
    mode="quick",
    runs=3,
    duration=1.0,
    warmup=1.0,
    connections=8,
    threads=1,
    writers=32,
    peer_sessions=100,
    live_sessions=100,
    agent_usage_rows=50,
    history_small=100,
    history_large=1_000,
    service_message_limit=200,
    ws_sockets=(10, 50),
    ws_events=5,
    ws_interval=0.25,
    ws_sockets_per_client=500,
    resume_events=200,
    e2e_samples=5,
    e2e_gap=0.2,
    sweep_due=100,
    sweep_totals=(200, 1_000),
    sweep_timeout=60.0,
)

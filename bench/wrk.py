"""Running wrk with bench/lua/request.lua and reading its one-line JSON result."""

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "lua" / "request.lua"
MARKER = "BENCH_RESULT "


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict[int, int]
    socket_errors: dict[str, int]

    def unexpected(self, expected: frozenset[int]) -> dict[int, int]:
        return {s: n for s, n in self.statuses.items() if s not in expected}

    def as_dict(self) -> dict:
        return {
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "rps": round(self.rps, 1),
            "p50_ms": self.p50_ms,
            "p90_ms": self.p90_ms,
            "p99_ms": self.p99_ms,
            "max_ms": self.max_ms,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "socket_errors": self.socket_errors,
        }


class WrkError(RuntimeError):
    pass


def run_wrk(
    *,
    url: str,
    method: str,
    path: str,
    duration: float,
    connections: int,
    threads: int,
    headers: dict[str, str],
    ids_file: Path | None = None,
    body: str | None = None,
) -> WrkResult:
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "-s",
        str(SCRIPT),
    ]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    command += [url, "--", method, path, str(ids_file) if ids_file else "-", body or "-"]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=duration + 60, check=False
    )
    line = next((x for x in result.stdout.splitlines() if x.startswith(MARKER)), None)
    if result.returncode != 0 or line is None:
        raise WrkError(
            f"wrk failed ({result.returncode}): {result.stderr.strip() or result.stdout.strip()}"
        )
    data = json.loads(line[len(MARKER) :])
    seconds = data["duration_us"] / 1e6
    errors = data["errors"]
    # wrk's "status" error counts responses >= 400; the status table reports them exactly.
    socket_errors = {k: v for k, v in errors.items() if k != "status" and v}
    latency = data["latency_us"]
    return WrkResult(
        requests=data["requests"],
        seconds=seconds,
        rps=data["requests"] / seconds if seconds else 0.0,
        p50_ms=round(latency["p50"] / 1000, 2),
        p90_ms=round(latency["p90"] / 1000, 2),
        p99_ms=round(latency["p99"] / 1000, 2),
        max_ms=round(latency["max"] / 1000, 2),
        statuses={int(k): v for k, v in data["statuses"].items()},
        socket_errors=socket_errors,
    )

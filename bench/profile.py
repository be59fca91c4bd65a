"""`make bench BENCH_ARGS=--profile`: where each scenario's time goes, on the running stack.

For every selected HTTP scenario, py-spy samples each `api` process twice while wrk sends the
scenario's requests: once the active threads (running, or runnable and waiting for a core: on
two contended cores a thread whose answer from PostgreSQL has arrived may wait for a core inside
psycopg's frame) and once with `--idle` restricted to the threads serving a request (wall time).
A third run, first and with no profiler attached, meters every process's CPU time (ours,
PostgreSQL, Redis, wrk, the rest): CPU milliseconds per request, the figure that bounds
throughput on a machine whose cores are all busy (in the other scenarios py-spy stays attached
and its own CPU is listed apart). The fan-out samples the `ws` processes, the agent reply the
`worker` and `ws` processes, the writers the `api` processes. Each sample is charged to the
innermost frame that belongs to a known layer (psycopg, Redis, the ORM, DRF, Django, our
code, ...), so the table says which layer the time is spent in, per request; our top
functions follow.

The report goes to `bench/results/profile.md` (committed with the full run: it is the record
of each remaining gap). py-spy must be installed (`pip install py-spy`; it is in
requirements-dev.txt) and allowed to read other processes (root, or ptrace_scope 0).
"""

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench.environment import BASE_DIR

RATE = 97  # samples per second per process (prime: never in step with a periodic task)
REQUEST_FRAME = "django/core/handlers/"  # a thread with this frame is serving a request

# (layer, path fragments): the innermost frame matching a fragment names the layer.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("psycopg: PostgreSQL round trips", ("/psycopg/", "/psycopg_c/", "/psycopg_pool/")),
    ("redis-py: Redis round trips", ("/redis/",)),
    ("logging", ("/logging/",)),
    ("JSON", ("/json/", "orjson")),
    ("Django ORM (query building, model instances)", ("/django/db/",)),
    ("DRF (dispatch, negotiation, serializers)", ("/rest_framework/",)),
    ("Django (handler, middleware, URLs, HTTP)", ("/django/",)),
    ("Twisted / autobahn (socket writes, framing)", ("/twisted/", "/autobahn/", "/txaio/")),
    ("daphne / channels / asgiref", ("/daphne/", "/channels/", "/asgiref/")),
    ("Celery / kombu / billiard", ("/celery/", "/kombu/", "/billiard/", "/vine/")),
    ("granian", ("/granian/",)),
)
OURS = "our code"
OTHER = "other (stdlib, interpreter)"
PROJECT_DIRS = tuple(
    f"{BASE_DIR}/{name}/"
    for name in ("agents", "messaging", "sessions_app", "questflow", "system", "config", "bench")
)


def _frame_path(frame: str) -> str:
    # "function (path:line)"
    start = frame.rfind(" (")
    return frame[start + 2 : frame.rfind(":")] if start >= 0 else ""


def layer_of(frames: list[str]) -> str:
    """The layer of the innermost frame that belongs to one (frames: outermost first)."""
    for frame in reversed(frames):
        path = _frame_path(frame)
        if "/.venv/" not in path and path.startswith(PROJECT_DIRS):
            return OURS
        for name, fragments in LAYERS:
            if any(fragment in path for fragment in fragments):
                return name
    return OTHER


def _project_function(frame: str) -> str | None:
    path = _frame_path(frame)
    if "/.venv/" in path or not path.startswith(PROJECT_DIRS):
        return None
    name = frame[: frame.rfind(" (")]
    return f"{name} ({os.path.relpath(path, BASE_DIR)})"


@dataclass
class Samples:
    """Collapsed stacks from py-spy's raw output: outermost frame first."""

    stacks: Counter = field(default_factory=Counter)

    @classmethod
    def parse(cls, text: str, *, only_frame: str | None = None) -> "Samples":
        stacks: Counter = Counter()
        for line in text.splitlines():
            head, _, count = line.rpartition(" ")
            if not head or not count.isdigit():
                continue
            if only_frame is not None and only_frame not in head:
                continue
            stacks[head] += int(count)
        return cls(stacks)

    def __add__(self, other: "Samples") -> "Samples":
        return Samples(self.stacks + other.stacks)

    @property
    def total(self) -> int:
        return sum(self.stacks.values())

    def layers(self) -> Counter:
        found: Counter = Counter()
        for stack, count in self.stacks.items():
            found[layer_of(stack.split(";"))] += count
        return found

    def our_functions(self, top: int = 10, *, wrapper_share: float = 0.95) -> list[tuple]:
        """Our functions by inclusive samples; those on (nearly) every stack are the request's
        own wrappers and say nothing."""
        found: Counter = Counter()
        for stack, count in self.stacks.items():
            names = {n for n in map(_project_function, stack.split(";")) if n}
            for name in names:
                found[name] += count
        total = self.total or 1
        kept = [(n, c) for n, c in found.most_common() if c / total < wrapper_share]
        return kept[:top]


class Sampler:
    """py-spy on each given process while the block runs; `.samples` after it."""

    def __init__(self, pids: list[int], *, idle: bool, only_frame: str | None = None) -> None:
        self.pids = pids
        self.idle = idle
        self.only_frame = only_frame
        self.samples = Samples()
        self.seconds = 0.0
        self._dir = Path(tempfile.mkdtemp(prefix="bench-profile-"))
        self._procs: list[subprocess.Popen] = []

    def __enter__(self) -> "Sampler":
        command = [py_spy(), "record", "--format", "raw", "--rate", str(RATE), "--nonblocking"]
        command += ["--full-filenames"] + (["--idle"] if self.idle else [])
        for pid in self.pids:
            self._procs.append(
                subprocess.Popen(
                    [*command, "--pid", str(pid), "--output", str(self._dir / f"{pid}.raw")],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        time.sleep(0.5)  # attached before the load starts
        self._started = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.monotonic() - self._started
        for proc in self._procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
        for proc in self._procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        for raw in self._dir.glob("*.raw"):
            self.samples += Samples.parse(raw.read_text(), only_frame=self.only_frame)
        shutil.rmtree(self._dir, ignore_errors=True)


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(os.sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise SystemExit("bench --profile needs py-spy: .venv/bin/pip install py-spy")
    return found


@dataclass
class Section:
    title: str
    requests: int | None  # requests (or events) served while sampled, when known
    cpu: Samples
    wall: Samples | None = None
    note: str = ""
    meter: "CpuMeter | None" = None


def layer_table(section: Section) -> list[str]:
    cpu_layers = section.cpu.layers()
    wall_layers = section.wall.layers() if section.wall is not None else Counter()
    per = section.requests or 0
    ms = 1000 / RATE
    head = "| layer | active share | active ms / request |"
    rule = "|---|---:|---:|"
    if section.wall is not None:
        head += " wall share (request threads) | wall ms / request |"
        rule += "---:|---:|"
    lines = [head, rule]
    names = [n for n, _ in (cpu_layers + wall_layers).most_common()]
    for name in names:
        cpu_count = cpu_layers[name]
        row = f"| {name} | {cpu_count / (section.cpu.total or 1):.0%} | "
        row += f"{cpu_count * ms / per:.2f} |" if per else "— |"
        if section.wall is not None:
            wall_count = wall_layers[name]
            row += f" {wall_count / (section.wall.total or 1):.0%} | "
            row += f"{wall_count * ms / per:.2f} |" if per else "— |"
        lines.append(row)
    total = f"| **total** | 100% | {section.cpu.total * ms / per:.2f} |" if per else ""
    if total and section.wall is not None:
        total += f" 100% | {section.wall.total * ms / per:.2f} |"
    return lines + ([total] if total else [])


def render(sections: list[Section], header: list[str]) -> str:
    out = ["# make bench --profile", "", *header, ""]
    for section in sections:
        out += [f"## {section.title}", ""]
        if section.note:
            out += [section.note, ""]
        if section.meter is not None:
            out += [section.meter.line(section.requests), ""]
        out += [*layer_table(section), ""]
        top = section.cpu.our_functions()
        if top:
            out += ["Our functions, inclusive active samples:", ""]
            total = section.cpu.total or 1
            out += [f"- {count / total:.0%} `{name}`" for name, count in top]
            out += [""]
    return "\n".join(out)


class CpuMeter:
    """CPU seconds (user + system) each group of processes used while the block ran: ours,
    PostgreSQL, Redis, the load generator, the profiler, everything else on the machine."""

    def __init__(self, ours: list[int]) -> None:
        self.ours = set(ours)
        self.used: dict[str, float] = {}

    def _group(self, process: psutil.Process) -> str:
        if process.pid in self.ours:
            return "our processes"
        name = process.info["name"] or ""
        for group, prefix in (("PostgreSQL", "postgres"), ("Redis", "redis-server")):
            if name.startswith(prefix):
                return group
        return "py-spy" if name == "py-spy" else "other"

    def _snapshot(self) -> dict[int, tuple[str, float]]:
        found = {}
        for process in psutil.process_iter(["name", "cpu_times"]):
            times = process.info["cpu_times"]
            if times is not None:
                found[process.pid] = (self._group(process), times.user + times.system)
        return found

    @staticmethod
    def _reaped() -> float:
        # The load generators (wrk, the node clients) are our children and have exited (and
        # been reaped) when the block ends: their CPU shows in our children's times.
        times = psutil.Process().cpu_times()
        return times.children_user + times.children_system

    def __enter__(self) -> "CpuMeter":
        self._children = self._reaped()
        self._before = self._snapshot()
        self._machine = psutil.cpu_times()
        self._started = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        after = self._snapshot()
        machine = psutil.cpu_times()
        children = self._reaped() - self._children
        self.elapsed = time.monotonic() - self._started
        self.used = {}
        for pid, (group, seconds) in after.items():
            used = seconds - self._before.get(pid, (group, 0.0))[1]
            self.used[group] = self.used.get(group, 0.0) + max(used, 0.0)
        self.used["load generator (wrk, clients)"] = children
        busy = sum(getattr(machine, f) - getattr(self._machine, f) for f in ("user", "system"))
        self.busy_share = busy / (self.elapsed * (psutil.cpu_count() or 1))

    def line(self, requests: int | None) -> str:
        unit, per = ("ms / request", requests) if requests else ("s in all", None)
        parts = [
            f"{name} {seconds * 1000 / per:.2f}" if per else f"{name} {seconds:.1f}"
            for name, seconds in sorted(self.used.items(), key=lambda kv: -kv[1])
            if seconds >= 0.005
        ]
        return (
            f"CPU used ({unit}): "
            + ", ".join(parts)
            + f"; the machine's cores {self.busy_share:.0%} busy."
        )


def measure(
    pids: list[int], load: Callable[[], int | None], settle: Callable[[], None], *, wall: bool
) -> Section:
    """Run `load` three times, each after `settle`: with no profiler attached, metering every
    process's CPU (py-spy's own sampling costs as much CPU as a heavy request); under py-spy's
    active samples; under py-spy's wall samples of request threads. Sample counts are scaled
    to the metered run's requests."""
    settle()
    with CpuMeter(pids) as meter:
        served = load()
    settle()
    with Sampler(pids, idle=False) as active:
        active_served = load()
    wall_samples = None
    if wall:
        settle()
        with Sampler(pids, idle=True, only_frame=REQUEST_FRAME) as sampler:
            wall_served = load()
        wall_samples = _scaled(sampler.samples, served, wall_served)
    section = Section(title="", requests=served, cpu=_scaled(active.samples, served, active_served))
    section.wall, section.meter = wall_samples, meter
    return section


def _scaled(samples: Samples, served: int | None, sampled: int | None) -> Samples:
    """Samples per request of the sampled run, as many as the metered run's requests."""
    if not served or not sampled:
        return samples
    return Samples(Counter({k: round(v * served / sampled) for k, v in samples.stacks.items()}))


def run(runner, selected, http_specs: list, header: list[str], out: Path) -> Path:
    """Profile every selected scenario on the running stack and write the report."""
    stack, params = runner.stack, runner.params
    pids = stack.pids()
    sections: list[Section] = []
    if http_specs:
        runner.prime(http_specs)
        runner.warm_bare()
        runner.log("profiling the bare ceiling")

        def bare_load() -> int:
            return runner._wrk(runner.bare(), params.duration).statuses.get(200, 0)

        section = measure(pids["bare"], bare_load, runner.settle, wall=True)
        section.title = "The bare framework ceiling: GET /bare (a DRF view, nothing of ours)"
        section.note = _rate_note(section, params.duration)
        sections.append(section)
    for spec in http_specs:
        runner.log(f"profiling {spec.key}")
        load = runner.ours(spec)

        def wrk_load(load=load, expect=spec.expect) -> int:
            result = runner._wrk(load, params.duration)
            return sum(n for s, n in result.statuses.items() if s in expect)

        section = measure(pids["api"], wrk_load, runner.settle, wall=True)
        section.title = f"`{spec.key}`: {spec.scenario}"
        section.note = _rate_note(section, params.duration)
        sections.append(section)
    if selected("writers"):
        runner.log("profiling writers")
        with Sampler(pids["api"], idle=False) as cpu, CpuMeter(pids["api"]) as meter:
            row = runner.writers()
        sections.append(
            Section(
                title="`writers`: one writer, then 32 writers on 32 channels (api processes)",
                requests=None,
                cpu=cpu.samples,
                note=f"{row.rps or 0:,.0f} rps with 32 writers, {row.other}.",
                meter=meter,
            )
        )
    largest = max(params.ws_sockets)
    if selected(f"ws_fanout_{largest}") and runner.ws_probe() is None:
        runner.log(f"profiling the fan-out to {largest} sockets")
        with Sampler(pids["ws"], idle=False) as cpu, CpuMeter(pids["ws"]) as meter:
            row = runner.fanout(largest, largest=False)
        sections.append(
            Section(
                title=f"`ws_fanout_{largest}`: the ws processes during a fan-out to "
                f"{largest:,} sockets (connections, then {params.ws_events} events)",
                requests=None,
                cpu=cpu.samples,
                note=f"p50 {row.p50_ms} / p99 {row.p99_ms} ms; {row.other}.",
                meter=meter,
            )
        )
    if selected("e2e_reply") and runner.ws_probe() is None:
        runner.log("profiling the end-to-end agent reply")
        ours = pids["worker"] + pids["ws"]
        with (
            Sampler(pids["worker"], idle=False) as worker,
            Sampler(pids["ws"], idle=False) as ws,
            CpuMeter(ours) as meter,
        ):
            row = runner.e2e()
        sections.append(
            Section(
                title="`e2e_reply`: the worker during agent replies",
                requests=None,
                cpu=worker.samples,
                note=f"p50 {row.p50_ms:.1f} / p99 {row.p99_ms:.1f} ms over "
                f"{params.e2e_samples} samples a run, {params.e2e_gap:g} s apart.",
                meter=meter,
            )
        )
        sections.append(
            Section(title="`e2e_reply`: the ws processes (on-CPU)", requests=None, cpu=ws.samples)
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(sections, header) + "\n")
    return out


def _rate_note(section: Section, duration: float) -> str:
    served = section.requests or 0
    return (
        f"{served:,} requests in {duration:g} s ({served / duration:,.0f} rps) with no profiler "
        f"attached (the CPU meter's run); py-spy at {RATE} Hz per process in the other two."
    )

"""ElizaOS 1.7.2 as a peer: installed, started, loaded and stopped by the harness.

`--peer elizaos` measures the same request shapes on ElizaOS as on ours. The peer is:

- **Installed** with `npm ci` into `var/peers/elizaos` (gitignored) from
  `bench/node/elizaos/package.json` and its lockfile: `@elizaos/server` 1.7.2 and the `bun`
  runtime it is built for (1.3.11, the release current when 1.7.2 came out), with the whole
  dependency tree pinned. Installed once; a later run reuses the copy.
- **Its API rate limiter lifted.** ElizaOS hard-codes 1,000 requests per 15 minutes per IP on
  every `/api` route (`createApiRateLimit` in `@elizaos/server`'s `dist/index.js`), with no
  setting to change it, so a measurement would see 429s after its first 1,000 requests. At
  install time the harness rewrites that one `max: 1000` to `max: 1e9` in the installed copy
  under `var/peers` (nothing else is touched). The limiter still runs and counts every
  request, as ours counts in Redis with limits raised to 10^9 (bench/README.md).
- **Started** with bun on 127.0.0.1 on a free port, with a fresh embedded PGlite database
  (its default) in a directory of its own under `var/peers/elizaos/runs/` (its log stays
  there), `NODE_ENV=production`, ElizaOS's default log level, and an API key
  (`ELIZA_SERVER_AUTH_TOKEN` for HTTP, `SERVER_API_KEY` for Socket.IO: every request is
  authenticated by `X-API-KEY`, as on ours). ElizaOS initializes Sentry with a DSN hard-coded
  in the server (`DEFAULT_SENTRY_DSN`, used unless `SENTRY_DSN` is set); the harness sets
  `SENTRY_DSN` to a DSN on a closed loopback port, so no event ever leaves the machine and no
  DNS lookup of sentry.io happens (a send is refused at once). Sentry sends only on an
  uncaught error (checked with strace: an unhandled rejection made the default DSN look
  sentry.io up through the resolver; with the harness's DSN, a loopback connect, refused).
  The run directory holds an empty `.env`: ElizaOS (and bun) read the first `.env` found from
  the working directory upwards, and it must not be the project's.
- **Loaded** through its REST API: one agent (a character without plugins: there is no model
  provider key on a bench machine), `sessions` live sessions (24-hour timeout, 48-hour maximum,
  as ours), and one session holding 60 messages for the history scenario.
- **Fanned out to** (`fanout`) on one more session's channel: the Node client's sockets join
  it over Socket.IO and the events are posted with `POST /api/messaging/submit`, which stores
  the message and broadcasts `messageBroadcast` to the channel (it does not wake the agent).
- **Stopped** with its whole process group.

Without a model plugin the agent does not reply: a session message is stored, published on
ElizaOS's internal bus, and the agent's message service fails with "No handler found for
delegate type: TEXT_SMALL" (logged). The HTTP answer (201 with the stored message, default
`websocket` transport) does not wait for the agent, so it is what an ElizaOS user sees.
"""

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from bench import fanout_node

NODE_DIR = Path(__file__).resolve().parent / "node"
PACKAGE_JSON = NODE_DIR / "elizaos" / "package.json"
PACKAGE_LOCK = NODE_DIR / "elizaos" / "package-lock.json"  # every dependency pinned
LAUNCHER = NODE_DIR / "eliza_server.mjs"
ELIZA_VERSION = "1.7.2"
INSTALL_TIMEOUT = 900
READY_TIMEOUT = 120
STOP_TIMEOUT = 15
HISTORY_MESSAGES = 60
# ElizaOS's messaging server id (DEFAULT_SERVER_ID), the server every channel belongs to.
MESSAGE_SERVER_ID = "00000000-0000-0000-0000-000000000000"
# The only change made to the installed ElizaOS (see the module docstring).
LIMITER_ORIGINAL = """var createApiRateLimit = () => {
  return rate_limit_default({
    windowMs: 15 * 60 * 1000,
    max: 1000,"""
LIMITER_LIFTED = """var createApiRateLimit = () => {
  return rate_limit_default({
    windowMs: 15 * 60 * 1000,
    max: 1e9, /* make bench: lifted from 1000 (bench/peer.py) */"""
READY_LINE = re.compile(r"^BENCH_READY (\d+)$", re.MULTILINE)
SESSION_TIMEOUT = {"timeoutMinutes": 1440, "maxDurationMinutes": 2880, "autoRenew": True}


class PeerUnavailable(Exception):
    """The peer cannot be measured; str(exc) is one line saying why."""


@dataclass(frozen=True)
class PeerHttp:
    """One request shape for wrk with bench/lua/request.lua ({id}, {uuid} filled there)."""

    method: str
    path: str
    body: dict | None
    headers: dict[str, str]
    expect: frozenset[int]
    ids_file: Path | None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(text: str, lines: int = 8) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:] if line.strip())


class ElizaPeer:
    label = f"ElizaOS {ELIZA_VERSION}"

    def __init__(self, var_dir: Path, log: Callable[[str], None], *, sessions: int = 100) -> None:
        self.var_dir = Path(var_dir).resolve()
        self.log = log
        self.sessions = sessions
        self.install_dir = self.var_dir / "elizaos"
        # One directory per start (var/peers/elizaos/runs/<harness pid>-*): two harness runs at
        # once must not share a PGlite database. Set by start().
        self.runs_dir = self.install_dir / "runs"
        self.run_dir = self.runs_dir / "not-started"
        self.server_js = self.install_dir / "node_modules/@elizaos/server/dist/index.js"
        self.bun = self.install_dir / "node_modules/.bin/bun"
        self.base_url = ""
        self.api_key = ""
        self.agent_id = ""
        self.fanout_session: dict = {}
        self._process: subprocess.Popen[bytes] | None = None

    # --- install ---------------------------------------------------------------------------

    def prepare(self) -> None:
        """Install ElizaOS, bun and the Node fan-out client if missing; lift the limiter."""
        if shutil.which("node") is None or shutil.which("npm") is None:
            raise PeerUnavailable("node/npm not found: the ElizaOS peer is skipped")
        if not self._installed():
            self._install()
        self._lift_rate_limit()
        reason = fanout_node.node_available()
        if reason:
            raise PeerUnavailable(f"{reason}: the ElizaOS peer is skipped")

    def _installed(self) -> bool:
        try:
            same = all(
                (self.install_dir / source.name).read_bytes() == source.read_bytes()
                for source in (PACKAGE_JSON, PACKAGE_LOCK)
            )
            server = json.loads(
                (self.install_dir / "node_modules/@elizaos/server/package.json").read_text()
            )
        except (OSError, ValueError):
            return False
        return same and server.get("version") == ELIZA_VERSION and self.bun.exists()

    def _install(self) -> None:
        self.log(f"installing {self.label} and bun with npm into {self.install_dir} ...")
        self.install_dir.mkdir(parents=True, exist_ok=True)
        for source in (PACKAGE_JSON, PACKAGE_LOCK):
            shutil.copyfile(source, self.install_dir / source.name)
        started = time.monotonic()
        npm = shutil.which("npm") or "npm"
        try:
            result = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=self.install_dir,
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise PeerUnavailable(
                f"npm ci of @elizaos/server@{ELIZA_VERSION} took over {INSTALL_TIMEOUT} s"
            ) from exc
        if result.returncode != 0 or not self._installed():
            raise PeerUnavailable(
                f"npm ci of @elizaos/server@{ELIZA_VERSION} failed "
                f"(exit {result.returncode}): {_tail(result.stderr or result.stdout)}"
            )
        self.log(f"installed in {time.monotonic() - started:.0f} s")

    def _lift_rate_limit(self) -> None:
        text = self.server_js.read_text()
        if LIMITER_LIFTED in text:
            return
        if text.count(LIMITER_ORIGINAL) != 1:
            raise PeerUnavailable(
                f"ElizaOS's API rate limiter not found in {self.server_js}: cannot lift it"
            )
        self.server_js.write_text(text.replace(LIMITER_ORIGINAL, LIMITER_LIFTED))

    # --- run -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start ElizaOS, wait until it answers, then create its agent and sessions.

        Raises RuntimeError (with the end of its log) when it does not come up; it is then
        stopped already.
        """
        if self._process is not None:
            return
        self._remove_stale_runs()
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        # A fresh PGlite database every start.
        self.run_dir = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=self.runs_dir))
        (self.run_dir / ".env").write_text("")
        port = _free_port()
        sentry_port = _free_port()  # nothing listens there: Sentry's sends are refused
        self.api_key = secrets.token_hex(16)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.run_dir),
            "LANG": "C.UTF-8",
            "NODE_ENV": "production",
            "ELIZA_SERVER_ENTRY": str(self.server_js),
            "SERVER_HOST": "127.0.0.1",
            "SERVER_PORT": str(port),
            "PGLITE_DATA_DIR": str(self.run_dir / "pglite"),
            "ELIZA_SERVER_AUTH_TOKEN": self.api_key,
            "SERVER_API_KEY": self.api_key,
            "SENTRY_DSN": f"http://bench@127.0.0.1:{sentry_port}/1",
        }
        self.log(f"starting {self.label} on 127.0.0.1:{port} (log: {self.log_file})")
        with self.log_file.open("wb") as out:
            self._process = subprocess.Popen(
                [str(self.bun), str(LAUNCHER)],
                cwd=self.run_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() ends every child
            )
        try:
            self._wait_ready()
            with self._client() as client:
                self._load(client)
        except httpx.HTTPError as exc:
            self.stop()
            raise RuntimeError(f"{self.label} set-up failed: {exc}: {self._log_tail()}") from exc
        except BaseException:
            self.stop()
            raise

    @property
    def ids_file(self) -> Path:
        return self.run_dir / "session_ids.txt"

    @property
    def history_file(self) -> Path:
        return self.run_dir / "history_session.txt"

    @property
    def log_file(self) -> Path:
        return self.run_dir / "server.log"

    def _remove_stale_runs(self) -> None:
        """Remove the run directories of harness processes that are gone."""
        if not self.runs_dir.is_dir():
            return
        for path in self.runs_dir.iterdir():
            owner = path.name.split("-", 1)[0]
            if not owner.isdigit() or not psutil.pid_exists(int(owner)):
                shutil.rmtree(path, ignore_errors=True)

    def _client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers={"X-API-KEY": self.api_key}, timeout=30)

    def _wait_ready(self) -> None:
        """Wait for the launcher's "BENCH_READY <port>" line, then for a 200 from the API.

        The port is read from that line: when the requested port is taken, ElizaOS silently
        listens on the next free one (and says so only in its log).
        """
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if self._process is None or self._process.poll() is not None:
                raise RuntimeError(f"{self.label} exited while starting: {self._log_tail()}")
            ready = READY_LINE.search(self.log_file.read_text(errors="replace"))
            if ready:
                self.base_url = f"http://127.0.0.1:{ready.group(1)}"
                with self._client() as client:
                    response = client.get("/api/server/ping")
                if response.status_code == 200:
                    return
                raise RuntimeError(f"{self.label}'s ping answered {response.status_code}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.label} not ready within {READY_TIMEOUT} s: {self._log_tail()}"
                )
            time.sleep(0.25)

    def _log_tail(self) -> str:
        try:
            return _tail(self.log_file.read_text(errors="replace"), 6)
        except OSError:
            return "(no log)"

    @staticmethod
    def _ok(response: httpx.Response, status: int, what: str) -> dict:
        if response.status_code != status:
            raise RuntimeError(
                f"{what} answered {response.status_code}, not {status}: {response.text[:300]}"
            )
        return response.json()

    def _new_session(self, client: httpx.Client) -> dict:
        response = client.post(
            "/api/messaging/sessions",
            json={
                "agentId": self.agent_id,
                "userId": str(uuid.uuid4()),
                "timeoutConfig": SESSION_TIMEOUT,
            },
        )
        return self._ok(response, 201, "POST /api/messaging/sessions")

    def _load(self, client: httpx.Client) -> None:
        started = time.monotonic()
        character = {
            "name": "bench",
            "bio": ["The make bench agent."],
            "plugins": [],  # no model provider: there is no LLM key on a bench machine
        }
        created = self._ok(
            client.post("/api/agents", json={"characterJson": character}), 201, "POST /api/agents"
        )
        self.agent_id = created["data"]["id"]
        self._ok(client.post(f"/api/agents/{self.agent_id}/start"), 200, "agent start")
        ids = [self._new_session(client)["sessionId"] for _ in range(self.sessions)]
        self.ids_file.write_text("\n".join(ids) + "\n")
        history = self._new_session(client)["sessionId"]
        for n in range(HISTORY_MESSAGES):
            self._ok(
                client.post(
                    f"/api/messaging/sessions/{history}/messages",
                    json={"content": f"history message {n}"},
                ),
                201,
                "POST session message",
            )
        self.history_file.write_text(history + "\n")
        # The fan-out channel: a session's channel of its own, joined by the sockets.
        self.fanout_session = self._new_session(client)
        self.log(
            f"{self.label}: agent {self.agent_id}, {self.sessions} sessions, "
            f"{HISTORY_MESSAGES} history messages in {time.monotonic() - started:.1f} s"
        )
        self._wait_idle()

    def _wait_idle(self, timeout: float = 60, threshold: float = 15) -> None:
        """Wait until the server is under `threshold` % of a core for two samples running.

        Each session message wakes the agent in the background (it fails without a model
        plugin, but reads and writes its memory first): the history messages keep it busy
        for a few seconds after they were posted.
        """
        processes = [psutil.Process(pid) for pid in self.pids()]
        deadline = time.monotonic() + timeout
        quiet = 0
        while quiet < 2 and time.monotonic() < deadline:
            before = sum(sum(p.cpu_times()[:2]) for p in processes)
            time.sleep(0.5)
            used = sum(sum(p.cpu_times()[:2]) for p in processes) - before
            quiet = quiet + 1 if used / 0.5 * 100 < threshold else 0

    def stop(self) -> None:
        """Stop the server and every child (its process group). Idempotent."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(STOP_TIMEOUT)
            except ProcessLookupError:
                pass
        # Anything it left behind in its group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        # The database goes; the log and the id files stay until the next start's clean-up.
        shutil.rmtree(self.run_dir / "pglite", ignore_errors=True)
        self.log(f"{self.label} stopped")

    def pids(self) -> list[int]:
        """The server and its descendants (for the harness's CPU-idle checks)."""
        if self._process is None or self._process.poll() is not None:
            return []
        try:
            root = psutil.Process(self._process.pid)
            return [root.pid] + [child.pid for child in root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    # --- scenarios -------------------------------------------------------------------------

    def http_specs(self) -> dict[str, PeerHttp]:
        auth = {"X-API-KEY": self.api_key}
        json_body = {**auth, "Content-Type": "application/json"}
        sessions = "/api/messaging/sessions"
        return {
            "heartbeat_eliza": PeerHttp(
                "POST", f"{sessions}/{{id}}/heartbeat", None, auth, frozenset({200}), self.ids_file
            ),
            "session_read_eliza": PeerHttp(
                "GET", f"{sessions}/{{id}}", None, auth, frozenset({200}), self.ids_file
            ),
            "session_create_eliza": PeerHttp(
                "POST",
                sessions,
                {"agentId": self.agent_id, "userId": "{uuid}"},
                json_body,
                frozenset({201}),
                None,
            ),
            # Default transport ("websocket"): 201 with the stored message, the reply (none
            # here: no model plugin) would arrive as an event.
            "session_message_eliza": PeerHttp(
                "POST",
                f"{sessions}/{{id}}/messages",
                {"content": "bench message {uuid}"},
                json_body,
                frozenset({201}),
                self.ids_file,
            ),
            "history_eliza": PeerHttp(
                "GET",
                f"{sessions}/{{id}}/messages?limit=50",
                None,
                auth,
                frozenset({200}),
                self.history_file,
            ),
        }

    def fanout(self, sockets: int, events: int, interval: float, deadline: float) -> dict:
        """One fan-out run on the fan-out session's channel (see bench/fanout_node.py)."""
        if not self.fanout_session:
            raise RuntimeError(f"{self.label} is not started")
        return fanout_node.run_fanout(
            target="elizaos",
            sockets=sockets,
            events=events,
            interval=interval,
            deadline=deadline,
            base_url=self.base_url,
            api_key=self.api_key,
            channel_id=self.fanout_session["channelId"],
            message_server_id=MESSAGE_SERVER_ID,
            author_id=self.fanout_session["userId"],
        )

"""The Node.js WebSocket fan-out client (bench/node/fanout.mjs), driven from Python.

One client design for both servers, so that neither side is measured with a slower client:
the `ws` package for ours, `socket.io-client` (websocket transport only) for ElizaOS, both in
one Node process that also posts the events (see the header of bench/node/fanout.mjs).

    node_available()  -> None, or why the Node client cannot run (installs its pinned packages
                         into var/peers/node_modules when they are missing)
    run_fanout(target="ours" | "elizaos", sockets=..., events=..., interval=..., deadline=...,
               **target_args) -> {"p50_ms", "p99_ms", "delivered", "expected", "sockets",
                                  "events", ...}
"""

import json
import os
import resource
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
NODE_DIR = Path(__file__).resolve().parent / "node"
SCRIPT = NODE_DIR / "fanout.mjs"
PACKAGE_JSON = NODE_DIR / "package.json"
PACKAGE_LOCK = NODE_DIR / "package-lock.json"  # the whole tree pinned: installed with `npm ci`
INSTALL_DIR = BASE_DIR / "var" / "peers"
NODE_MODULES = INSTALL_DIR / "node_modules"
CONNECT_CONCURRENCY = 25
INSTALL_TIMEOUT = 600

# Keys the harness relies on (run_fanout adds more: p90/max, connect and socket errors).
RESULT_KEYS = ("p50_ms", "p99_ms", "delivered", "expected", "sockets", "events")
TARGET_ARGS = {
    "ours": ("ws_url", "api_url", "api_key", "channel_id"),
    "elizaos": ("base_url", "api_key", "channel_id", "message_server_id", "author_id"),
}


class NodeClientError(RuntimeError):
    pass


def _pinned() -> dict[str, str]:
    return json.loads(PACKAGE_JSON.read_text())["dependencies"]


def _installed_version(name: str) -> str | None:
    try:
        return json.loads((NODE_MODULES / name / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def _tail(text: str, lines: int = 8) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])


def node_available() -> str | None:
    """None when `node` runs and the pinned packages are installed; otherwise the reason.

    Missing or differently versioned packages are installed with `npm ci` into var/peers
    (copies of bench/node/package.json and package-lock.json are placed there; var/ is
    gitignored).
    """
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None:
        return "node not found: the Node.js fan-out client cannot run"
    pinned = _pinned()
    if all(_installed_version(name) == version for name, version in pinned.items()):
        return None
    if npm is None:
        return "npm not found: cannot install the Node.js fan-out client's packages"
    INSTALL_DIR.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PACKAGE_JSON, INSTALL_DIR / "package.json")
    shutil.copyfile(PACKAGE_LOCK, INSTALL_DIR / "package-lock.json")
    try:
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=INSTALL_DIR,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"npm ci of {', '.join(pinned)} took over {INSTALL_TIMEOUT} s"
    if result.returncode != 0:
        return f"npm ci of {', '.join(pinned)} failed: {_tail(result.stderr or result.stdout)}"
    wrong = [n for n, v in pinned.items() if _installed_version(n) != v]
    if wrong:
        return f"npm did not install the pinned {', '.join(wrong)}"
    return None


def _raise_fd_limit() -> None:
    """In the child: as many sockets as the hard limit allows (1,000 sockets > 1,024 soft)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def run_fanout(
    *,
    target: str,
    sockets: int,
    events: int,
    interval: float,
    deadline: float,
    **target_args: Any,
) -> dict:
    """One fan-out run: `sockets` sockets, `events` events `interval` s apart.

    `deadline`: seconds from the moment every socket is ready until the client stops waiting
    for missing events. Raises NodeClientError when the client cannot run or prints nothing.
    """
    if target not in TARGET_ARGS:
        raise ValueError(f"unknown fan-out target {target!r}")
    missing = [k for k in TARGET_ARGS[target] if k not in target_args]
    if target == "elizaos":
        target_args.setdefault("api_key", None)
        missing = [k for k in missing if k != "api_key"]
    if missing:
        raise ValueError(f"run_fanout(target={target!r}) needs {', '.join(missing)}")
    reason = node_available()
    if reason:
        raise NodeClientError(reason)
    config = {
        "target": target,
        "sockets": sockets,
        "events": events,
        "interval": interval,
        "deadline": deadline,
        "concurrency": CONNECT_CONCURRENCY,
        "tag": uuid.uuid4().hex[:10],
        "args": target_args,
    }
    # Connecting takes a while at 1,000 sockets (30 s handshake timeout each): allow for it.
    timeout = 60 + sockets * 0.2 + events * interval + deadline
    try:
        process = subprocess.run(
            [shutil.which("node") or "node", str(SCRIPT), json.dumps(config)],
            cwd=BASE_DIR,
            env={"PATH": os.environ.get("PATH", ""), "BENCH_NODE_MODULES": str(NODE_MODULES)},
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=_raise_fd_limit,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise NodeClientError(f"the Node.js fan-out client ran over {timeout:.0f} s") from exc
    for line in reversed(process.stdout.splitlines()):
        if line.startswith("{"):
            data = json.loads(line)
            if "result" in data:
                return data["result"]
            raise NodeClientError(f"the Node.js fan-out client failed: {data.get('error')}")
    raise NodeClientError(
        f"the Node.js fan-out client printed no result (exit {process.returncode}): "
        f"{_tail(process.stderr)}"
    )

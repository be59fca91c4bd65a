"""The README's shell examples, as written, in order, against a live stack over the seeded demo:
every documented command must run after `make run` (issue 19).

The blocks that call the API (curl and `.venv/bin/python manage.py ...`) run as ONE bash script
under `set -euo pipefail`, so a variable used before it is set, or a failing command, fails
the test. Only the host names change (the stack's free ports) and the two values the README
asks the reader to set from `make run`'s output (`KEY`, `ADMIN_PASSWORD`). Every curl must
answer the status its line's comment names (`# 403`), else a 2xx.
"""

import re
import subprocess
import threading
from pathlib import Path

import pytest

from tests.e2e.conftest import DEMO_ADMIN_PASSWORD as ADMIN_PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.embedded]

BASE_DIR = Path(__file__).resolve().parents[2]
README = BASE_DIR / "README.md"
# Logs each curl's status, method and URL to stderr, where the script's output ignores it.
CURL_STATUS = 'curl() { command curl -w "%{stderr}HTTP %{http_code} %{url_effective}\\n" "$@"; }'
STATUS_LINE = re.compile(r"^HTTP (\d{3}) (\S+)$", re.M)
SH_BLOCK = re.compile(r"```sh\n(.*?)```", re.S)


def readme_blocks() -> list[str]:
    return SH_BLOCK.findall(README.read_text())


def api_blocks() -> list[str]:
    """The blocks that call the API (or make keys), not the ones that start processes or set
    the reader's values."""
    return [
        b
        for b in readme_blocks()
        if ("curl " in b or "manage.py create_api_key" in b) and "KEY=371os_..." not in b
    ]


def commands(script: str) -> list[str]:
    """Logical command lines: backslash continuations joined."""
    return [line for line in script.replace("\\\n", " ").splitlines() if line.strip()]


def expected_statuses(script: str) -> list[str]:
    """For each curl, in order: the status its comment names, else "2xx"."""
    expected = []
    for line in commands(script):
        if "curl " in line and not line.lstrip().startswith("#"):
            named = re.search(r"#\s*(\d{3})\b", line)
            expected.append(named.group(1) if named else "2xx")
    return expected


def answered_as(status: str, expected: str) -> str:
    """The status as `expected` spells it when it matches ("201" matches "2xx")."""
    return "2xx" if expected == "2xx" and status.startswith("2") else status


def on_stack(text: str, live_stack) -> str:
    return text.replace("http://127.0.0.1:8000", live_stack.api_url).replace(
        "ws://127.0.0.1:8001/v1/ws", live_stack.ws_url
    )


def test_the_readme_sets_every_variable_it_uses_and_names_its_routes():
    script = "\n".join(api_blocks())

    assert "/api/workflows/templates" in script
    assert "/api/agents/csuite/meetings/$M" in script
    assert "python manage.py" not in script.replace(".venv/bin/python manage.py", "")


def test_the_readmes_api_examples_run_in_order(live_stack, demo):
    script = "\n".join(api_blocks())
    expected = expected_statuses(script)
    env = {**live_stack.env, "KEY": demo, "ADMIN_PASSWORD": ADMIN_PASSWORD}

    result = subprocess.run(
        ["bash", "-c", f"set -euo pipefail\n{CURL_STATUS}\n{on_stack(script, live_stack)}"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )

    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    answered = STATUS_LINE.findall(result.stderr)
    # Fewer statuses than curls (a command that never ran) makes `got` shorter: it fails too.
    got = [answered_as(s, want) for (s, _), want in zip(answered, expected, strict=False)]
    assert got == expected, "\n".join(" ".join(a) for a in answered)


def read_until(process: subprocess.Popen[str], text: str, seen: list[str]) -> None:
    """Read the client's output lines into `seen` until one holds `text` (or output ends)."""
    for line in process.stdout:
        seen.append(line)
        if text in line:
            return


def test_the_readmes_websocket_client_connects(live_stack, demo):
    (block,) = [b for b in readme_blocks() if "-m websockets" in b]
    env = {**live_stack.env, "KEY": demo, "PYTHONUNBUFFERED": "1"}
    seen: list[str] = []

    # The client is interactive: it leaves when its input ends, so type into it as a reader
    # would, after it has connected.
    with subprocess.Popen(
        ["bash", "-c", f"set -euo pipefail\n{on_stack(block, live_stack)}"],
        cwd=BASE_DIR,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as client:
        watchdog = threading.Timer(60, client.kill)  # a silent server ends the test, not CI
        watchdog.start()
        try:
            read_until(client, '"connection_established"', seen)
            client.stdin.write('{"command": "ping", "id": "readme"}\n')
            client.stdin.flush()
            read_until(client, '"pong"', seen)
        finally:
            watchdog.cancel()
            client.stdin.close()
            client.wait(timeout=30)

    output = "".join(seen)
    assert '"connection_established"' in output, output
    assert '"pong"' in output, output

"""ElizaOS's own client, `@elizaos/api-client` 1.7.2 from npm, drives the live stack unchanged:
create a session, send a message, list messages, renew, delete (issue 16).

The package is installed once into VAR_DIR (reruns reuse it). Skipped only where `node` or
`npm` is missing; a refused install fails with npm's output."""

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from agents.services import agent_create, agent_start

pytestmark = [pytest.mark.e2e, pytest.mark.embedded]

PACKAGE = "@elizaos/api-client@1.7.2"
USER = "8c4f1a2e-5b6d-4e7f-9a0b-1c2d3e4f5a6b"

# The client has no renew method: the renewal goes through its own request method (`post`).
SCRIPT = """
import { ElizaClient } from "@elizaos/api-client";

const [baseUrl, apiKey, agentId, userId] = process.argv.slice(2);
const client = ElizaClient.create({ baseUrl, apiKey });
const created = await client.sessions.createSession({ agentId, userId, metadata: { via: "npm" } });
const sent = await client.sessions.sendMessage(created.sessionId, { content: "Hello from npm" });
const synced = await client.sessions.sendMessageSync(created.sessionId, { content: "And now?" });
const history = await client.sessions.getMessages(created.sessionId, { limit: 10 });
const renewed = await client.sessions.post(`/api/messaging/sessions/${created.sessionId}/renew`);
const deleted = await client.sessions.deleteSession(created.sessionId);
let afterDelete;
try {
  await client.sessions.getSession(created.sessionId);
} catch (error) {
  afterDelete = { code: error.code, status: error.status };
}
console.log(JSON.stringify({ created, sent, synced, history, renewed, deleted, afterDelete }));
"""


@pytest.fixture(scope="module")
def client_dir() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed to run ElizaOS's @elizaos/api-client")
    directory = Path(settings.VAR_DIR) / "npm" / "elizaos-api-client-1.7.2"
    if not (directory / "node_modules" / "@elizaos" / "api-client" / "package.json").exists():
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "package.json").write_text('{"private": true, "type": "module"}\n')
        installed = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", PACKAGE],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=600,
        )
        output = f"{installed.stdout}\n{installed.stderr}"
        assert installed.returncode == 0, f"npm install {PACKAGE} failed:\n{output}"
    (directory / "session_flow.mjs").write_text(SCRIPT)
    return directory


def test_the_elizaos_client_drives_a_session(
    live_stack, transactional_db, make_api_key, client_dir
):
    mimi = agent_start(agent=agent_create(name="ceo_mimi", type="ceo_mimi"))
    key = make_api_key(["messaging"])

    ran = subprocess.run(
        ["node", "session_flow.mjs", live_stack.api_url, key, str(mimi.agent_id), USER],
        cwd=client_dir,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert ran.returncode == 0, f"{ran.stdout}\n{ran.stderr}\n{live_stack.log_tail()}"
    result = json.loads(ran.stdout.strip().splitlines()[-1])
    created = result["created"]
    assert created["agentId"] == str(mimi.agent_id)
    assert created["userId"] == USER
    assert created["metadata"] == {"via": "npm"}
    # The client resolves sendMessage to `body.data`, which ElizaOS's server leaves out too.
    assert "sent" not in result and "synced" not in result
    contents = [m["content"] for m in result["history"]["messages"]]
    assert "Hello from npm" in contents and "And now?" in contents
    assert any(m["isAgent"] for m in result["history"]["messages"])
    assert result["renewed"]["sessionId"] == created["sessionId"]
    assert result["renewed"]["renewalCount"] >= 1
    assert "deleted" not in result  # `{success: true, message}` has no `data` either
    assert result["afterDelete"] == {"code": "SESSION_NOT_FOUND", "status": 404}


def test_a_plain_http_call_reads_agent_response_text(live_stack, transactional_db, make_api_key):
    mimi = agent_start(agent=agent_create(name="ceo_mimi", type="ceo_mimi"))
    headers = {"X-API-KEY": make_api_key(["messaging"])}
    sessions = f"{live_stack.api_url}/api/messaging/sessions"
    session = httpx.post(
        sessions, json={"agentId": str(mimi.agent_id), "userId": str(uuid.uuid4())}, headers=headers
    ).json()

    answer = httpx.post(
        f"{sessions}/{session['sessionId']}/messages",
        json={"content": "Where do we stand on Q4?", "transport": "http"},
        headers=headers,
        timeout=60,
    )

    assert answer.status_code == 201, answer.text
    assert answer.json()["agentResponse"]["text"]
    assert answer.json()["userMessage"]["source_type"] == "user"

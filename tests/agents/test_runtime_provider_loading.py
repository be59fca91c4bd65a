"""Providers are built when first called (building one imports its SDK, seconds for some), and
a worker preloads the configured ones before it forks its pool."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agents.runtime import ChatMessage, ModelConfig, router
from tests.agents.conftest import TEST_OPENAI_API_KEY

BASE_DIR = Path(__file__).resolve().parents[2]
MESSAGES = [
    ChatMessage("system", "You are Mimi, the CEO of 371OS."),
    ChatMessage("user", "What is our top priority this week?"),
]
OPENAI_THEN_BUILTIN = {"gpt-4": [("openai-fake", "gpt-4o"), ("builtin", "builtin-responder")]}


@pytest.fixture
def built(monkeypatch) -> list[str]:
    """The names of the providers the router builds, in order."""
    names: list[str] = []
    real = router.provider_build

    def recording(*, spec):
        names.append(spec.name)
        return real(spec=spec)

    monkeypatch.setattr(router, "provider_build", recording)
    return names


def test_a_router_builds_only_the_providers_it_calls(routing_config, built, monkeypatch):
    loaded = routing_config(models=OPENAI_THEN_BUILTIN)
    monkeypatch.delenv("TEST_OPENAI_API_KEY")
    assert built == []

    loaded.complete(MESSAGES, ModelConfig(model="gpt-4"))
    loaded.complete(MESSAGES, ModelConfig(model="gpt-4"))

    assert built == ["builtin"]


def test_a_provider_is_built_once_and_serves_streams_too(routing_config, fake_openai, built):
    loaded = routing_config(models=OPENAI_THEN_BUILTIN)
    fake_openai.enqueue_text("first", prompt_tokens=3, completion_tokens=1)
    fake_openai.enqueue_text("second", prompt_tokens=3, completion_tokens=1)

    assert loaded.complete(MESSAGES, ModelConfig(model="gpt-4")).completion.text == "first"
    streamed = loaded.stream(MESSAGES, ModelConfig(model="gpt-4"))
    assert "".join(item for item in streamed if isinstance(item, str)) == "second"

    assert built == ["openai-fake"]


def test_preload_builds_every_configured_provider_and_no_other(routing_config, built, monkeypatch):
    loaded = routing_config()
    monkeypatch.delenv("TEST_ANTHROPIC_API_KEY")

    loaded.preload()
    loaded.preload()

    assert built == ["openai-fake", "builtin"]


def test_a_process_without_provider_keys_never_imports_an_llm_sdk(tmp_path):
    """The default routing file ends every alias at the builtin when no key is set: answering
    must not load the `openai` or `anthropic` SDK (seconds of import on a worker's first reply)."""
    code = (
        "import json, sys, django; django.setup()\n"
        "from pathlib import Path\n"
        "from django.conf import settings\n"
        "from agents.runtime import ChatMessage, ModelConfig, Router, load_routing_config\n"
        "r = Router(load_routing_config(Path(settings.LLM_ROUTING_PATH)))\n"
        "r.preload()\n"
        "for model in r.aliases():\n"
        "    r.complete([ChatMessage('user', 'hi')], ModelConfig(model=model))\n"
        "print(json.dumps(sorted(m for m in ('openai', 'anthropic') if m in sys.modules)))\n"
    )
    keys = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OLLAMA_BASE_URL", "DATABASE_URL")
    env = {k: v for k, v in os.environ.items() if k not in keys}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_DEBUG="on",
        VAR_DIR=str(tmp_path),
        TEST_OPENAI_API_KEY=TEST_OPENAI_API_KEY,
    )

    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []

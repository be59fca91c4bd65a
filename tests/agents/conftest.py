"""Fixtures for anything that calls LLMs: fake providers and a routing file pointing at them.

    def test_something(routing_config, fake_openai):
        fake_openai.enqueue_text("hi", prompt_tokens=10, completion_tokens=2)
        router = routing_config(models={"gpt-4": [("openai-fake", "gpt-4o", 0.01, 0.03)]})
        ...  # code under test calls get_router(), which now returns `router`

Providers declared by default (override or add with `providers=`):
    openai-fake     kind openai, at fake_openai, key in $TEST_OPENAI_API_KEY (set)
    anthropic-fake  kind anthropic, at fake_anthropic, key in $TEST_ANTHROPIC_API_KEY (set)
    builtin         kind builtin
Pass `clock=fake_clock` to step through circuit-breaker cooldowns and the file re-read interval.
"""

from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from agents.runtime import Router, router_reload
from tests.agents.llm_servers import FakeAnthropicServer, FakeOpenAIServer

TEST_OPENAI_API_KEY = "sk-test-openai-0123456789abcdef"
TEST_ANTHROPIC_API_KEY = "sk-ant-test-0123456789abcdef"

# A candidate: (provider, model) is free; (provider, model, cost_in, cost_out) is priced per 1k.
CandidateSpec = tuple[str, str] | tuple[str, str, float | str | Decimal, float | str | Decimal]


class FakeClock:
    """A monotonic clock that moves only when told: circuit-breaker cooldowns without sleeping."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropicServer]:
    with FakeAnthropicServer() as server:
        yield server


def _candidate(spec: CandidateSpec) -> dict[str, Any]:
    provider, model, *prices = spec
    cost_in, cost_out = prices or (0, 0)
    return {
        "provider": provider,
        "model": model,
        "cost_per_1k_input": str(cost_in),
        "cost_per_1k_output": str(cost_out),
    }


@pytest.fixture
def routing_config(
    tmp_path: Path,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    fake_openai: FakeOpenAIServer,
    fake_anthropic: FakeAnthropicServer,
) -> Callable[..., Router]:
    """routing_config(models=..., providers=..., failures=3, cooldown=30, timeout=5, clock=None)

    Writes a routing file, points settings.LLM_ROUTING_PATH at it and reloads, so that
    get_router() returns the router this returns. `models` maps alias → [CandidateSpec, ...];
    `providers` maps name → provider entry (as in the YAML) and is merged over the defaults;
    `timeout` is the fake providers' timeout_seconds; `clock` drives the circuit breakers.
    Calling it again rewrites the file and reloads.
    """
    monkeypatch.setenv("TEST_OPENAI_API_KEY", TEST_OPENAI_API_KEY)
    monkeypatch.setenv("TEST_ANTHROPIC_API_KEY", TEST_ANTHROPIC_API_KEY)
    path = tmp_path / "llm_routing.yaml"

    def write(
        *,
        models: dict[str, list[CandidateSpec]] | None = None,
        providers: dict[str, dict[str, Any]] | None = None,
        failures: int = 3,
        cooldown: float = 30,
        timeout: float = 5,
        clock: Callable[[], float] | None = None,
    ) -> Router:
        declared: dict[str, dict[str, Any]] = {
            "openai-fake": {
                "kind": "openai",
                "base_url": fake_openai.base_url,
                "api_key_env": "TEST_OPENAI_API_KEY",
                "timeout_seconds": timeout,
            },
            "anthropic-fake": {
                "kind": "anthropic",
                "base_url": fake_anthropic.base_url,
                "api_key_env": "TEST_ANTHROPIC_API_KEY",
                "timeout_seconds": timeout,
            },
            "builtin": {"kind": "builtin"},
            **(providers or {}),
        }
        if models is None:
            models = {
                "gpt-4": [("openai-fake", "gpt-4o"), ("builtin", "builtin-responder")],
                "claude-3-5-sonnet": [
                    ("anthropic-fake", "claude-sonnet-4-6"),
                    ("builtin", "builtin-responder"),
                ],
                "builtin": [("builtin", "builtin-responder")],
            }
        document = {
            "providers": declared,
            "circuit_breaker": {"failures": failures, "cooldown_seconds": cooldown},
            "models": {
                alias: [_candidate(spec) for spec in specs] for alias, specs in models.items()
            },
        }
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        settings.LLM_ROUTING_PATH = path
        if clock is None:
            return router_reload()
        return router_reload(clock=clock)

    return write

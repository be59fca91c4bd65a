"""The router: fallback, circuit breaking, attempts and prices, the routing file and its reloads."""

import json
import logging
import os
import socket
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from agents.runtime import (
    AllCandidatesFailed,
    ChatMessage,
    ModelConfig,
    Router,
    RouterResult,
    RoutingConfigError,
    UnknownModel,
    get_router,
    load_routing_config,
    router_reload,
)
from tests.agents.conftest import TEST_ANTHROPIC_API_KEY, TEST_OPENAI_API_KEY, FakeClock
from tests.agents.llm_servers import FakeOpenAIServer

MESSAGES = [
    ChatMessage("system", "You are Mimi, the CEO of 371OS."),
    ChatMessage("user", "What is our top priority this week?"),
]
GPT4 = ModelConfig(model="gpt-4")
OPENAI_THEN_BUILTIN = {"gpt-4": [("openai-fake", "gpt-4o"), ("builtin", "builtin-responder")]}
OPENAI_THEN_ANTHROPIC = {
    "gpt-4": [("openai-fake", "gpt-4o"), ("anthropic-fake", "claude-sonnet-4-6")]
}
DEFAULT_ROUTING = Path(django_settings.BASE_DIR) / "config" / "llm_routing.yaml"


def _used(result: RouterResult) -> list[tuple[str, bool, str]]:
    return [(a.provider, a.success, a.error_code) for a in result.attempts]


# --- completing and falling back -----------------------------------------------------------


def test_complete_answers_from_the_first_candidate(routing_config, fake_openai) -> None:
    fake_openai.enqueue_text("Ship the beta.")
    router = routing_config(models=OPENAI_THEN_BUILTIN)

    result = router.complete(MESSAGES, GPT4)

    assert (result.completion.text, result.completion.provider) == ("Ship the beta.", "openai-fake")
    assert _used(result) == [("openai-fake", True, "")]


@pytest.mark.parametrize(("status", "code"), [(500, "server_error"), (429, "rate_limited")])
def test_retryable_status_falls_back_to_the_next_candidate(
    routing_config, fake_openai, fake_anthropic, status: int, code: str
) -> None:
    fake_openai.enqueue_status(status)
    fake_anthropic.enqueue_text("From Claude.")
    router = routing_config(models=OPENAI_THEN_ANTHROPIC)

    result = router.complete(MESSAGES, GPT4)

    assert result.completion.text == "From Claude."
    assert _used(result) == [("openai-fake", False, code), ("anthropic-fake", True, "")]


def test_timeout_falls_back_to_the_next_candidate(routing_config, fake_openai) -> None:
    fake_openai.enqueue_delay(2)
    router = routing_config(models=OPENAI_THEN_BUILTIN, timeout=0.5)

    result = router.complete(MESSAGES, GPT4)

    assert result.completion.provider == "builtin"
    assert _used(result) == [("openai-fake", False, "timeout"), ("builtin", True, "")]


def test_refused_connection_falls_back_to_the_next_candidate(routing_config) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    down = {"kind": "openai", "base_url": f"http://127.0.0.1:{port}/v1"}
    router = routing_config(
        providers={"down": down},
        models={"gpt-4": [("down", "gpt-4o"), ("builtin", "builtin-responder")]},
    )

    result = router.complete(MESSAGES, GPT4)

    assert _used(result) == [("down", False, "connection_error"), ("builtin", True, "")]


def test_non_retryable_error_stops_without_fallback(
    routing_config, fake_openai, fake_anthropic
) -> None:
    fake_openai.enqueue_status(400)
    router = routing_config(models=OPENAI_THEN_ANTHROPIC)

    with pytest.raises(AllCandidatesFailed) as caught:
        router.complete(MESSAGES, GPT4)

    assert [(a.provider, a.error_code) for a in caught.value.attempts] == [
        ("openai-fake", "bad_request")
    ]
    assert fake_anthropic.requests == []


def test_every_candidate_failing_raises_with_every_attempt_and_no_key(
    routing_config, fake_openai, fake_anthropic
) -> None:
    fake_openai.enqueue_status(500)
    fake_anthropic.enqueue_status(529)
    router = routing_config(models=OPENAI_THEN_ANTHROPIC)

    with pytest.raises(AllCandidatesFailed) as caught:
        router.complete(MESSAGES, GPT4)

    assert [a.error_code for a in caught.value.attempts] == ["server_error", "server_error"]
    assert "openai-fake/gpt-4o: server_error" in str(caught.value)
    assert TEST_OPENAI_API_KEY not in str(caught.value)


def test_attempts_record_failed_and_successful_calls_with_tokens_and_cost(
    routing_config, fake_openai, fake_anthropic
) -> None:
    fake_openai.enqueue_status(503)
    fake_anthropic.enqueue_text("Done.", prompt_tokens=1000, completion_tokens=200)
    router = routing_config(
        models={
            "gpt-4": [
                ("openai-fake", "gpt-4o", "0.0025", "0.01"),
                ("anthropic-fake", "claude-sonnet-4-6", "0.003", "0.015"),
            ]
        }
    )

    failed, succeeded = router.complete(MESSAGES, GPT4).attempts

    assert (failed.success, failed.error_code, failed.prompt_tokens, failed.cost_usd) == (
        False,
        "server_error",
        0,
        Decimal(0),
    )
    assert failed.latency_ms > 0
    assert (succeeded.success, succeeded.prompt_tokens, succeeded.completion_tokens) == (
        True,
        1000,
        200,
    )
    # 1000 * 0.003 / 1000 + 200 * 0.015 / 1000
    assert succeeded.cost_usd == Decimal("0.006")


def test_completion_cost_comes_from_the_candidates_prices(routing_config, fake_openai) -> None:
    fake_openai.enqueue_text("Ok.", prompt_tokens=2000, completion_tokens=500)
    router = routing_config(models={"gpt-4": [("openai-fake", "gpt-4o", "0.0025", "0.01")]})

    completion = router.complete(MESSAGES, GPT4).completion

    assert completion.cost_usd == Decimal("0.01")


def test_unknown_model_lists_the_configured_aliases(routing_config) -> None:
    router = routing_config()

    with pytest.raises(UnknownModel) as caught:
        router.complete(MESSAGES, ModelConfig(model="gpt-9"))

    assert caught.value.known_aliases == ["builtin", "claude-3-5-sonnet", "gpt-4"]
    assert "builtin, claude-3-5-sonnet, gpt-4" in str(caught.value)


def test_resolve_skips_a_provider_whose_key_variable_is_unset(
    routing_config, fake_openai, monkeypatch
) -> None:
    monkeypatch.delenv("TEST_UNSET_KEY", raising=False)
    openrouter = {
        "kind": "openai",
        "base_url": fake_openai.base_url,
        "api_key_env": "TEST_UNSET_KEY",
    }
    router = routing_config(
        providers={"openrouter": openrouter},
        models={"gpt-4": [("openrouter", "openai/gpt-4o"), ("builtin", "builtin-responder")]},
    )

    assert [c.provider for c in router.resolve("gpt-4")] == ["builtin"]


def test_complete_never_calls_an_unconfigured_provider(
    routing_config, fake_openai, monkeypatch
) -> None:
    router = routing_config(models=OPENAI_THEN_BUILTIN)
    monkeypatch.delenv("TEST_OPENAI_API_KEY")

    result = router.complete(MESSAGES, GPT4)

    assert _used(result) == [("builtin", True, "")]
    assert fake_openai.requests == []


def test_alias_without_any_configured_provider_names_the_missing_variable(
    routing_config, monkeypatch
) -> None:
    router = routing_config(models={"gpt-4": [("openai-fake", "gpt-4o")]})
    monkeypatch.delenv("TEST_OPENAI_API_KEY")

    with pytest.raises(AllCandidatesFailed, match="TEST_OPENAI_API_KEY") as caught:
        router.complete(MESSAGES, GPT4)

    assert caught.value.attempts == []


# --- streaming -----------------------------------------------------------------------------


def test_stream_yields_deltas_then_one_router_result(routing_config, fake_openai) -> None:
    fake_openai.enqueue_text("Ship the beta.", prompt_tokens=20, completion_tokens=4)
    router = routing_config(models={"gpt-4": [("openai-fake", "gpt-4o", "0.0025", "0.01")]})

    *deltas, result = router.stream(MESSAGES, GPT4)

    assert deltas == ["Ship ", "the ", "beta."]
    assert result.completion.text == "Ship the beta."
    assert result.completion.cost_usd == Decimal("0.00009")
    assert _used(result) == [("openai-fake", True, "")]


def test_stream_falls_back_when_the_first_candidate_fails_before_any_text(
    routing_config, fake_openai
) -> None:
    fake_openai.enqueue_status(500)
    router = routing_config(models=OPENAI_THEN_BUILTIN)

    *deltas, result = router.stream(MESSAGES, GPT4)

    assert "".join(deltas) == result.completion.text
    assert result.completion.text.startswith("[offline responder]")
    assert _used(result) == [("openai-fake", False, "server_error"), ("builtin", True, "")]


def test_stream_failing_after_text_was_sent_raises_without_fallback(
    routing_config, fake_openai, fake_anthropic
) -> None:
    fake_openai.enqueue_broken_stream("Ship the")
    router = routing_config(models=OPENAI_THEN_ANTHROPIC)
    received: list[object] = []

    with pytest.raises(AllCandidatesFailed) as caught:
        for item in router.stream(MESSAGES, GPT4):
            received.append(item)

    assert received == ["Ship ", "the"]
    assert [(a.provider, a.error_code) for a in caught.value.attempts] == [
        ("openai-fake", "server_error")
    ]
    assert fake_anthropic.requests == []


# --- circuit breaker -----------------------------------------------------------------------


def _open_openai_circuit(router: Router, fake_openai: FakeOpenAIServer) -> None:
    """Two failures with failures=2: the circuit of openai-fake opens."""
    fake_openai.enqueue_status(500)
    fake_openai.enqueue_status(500)
    router.complete(MESSAGES, GPT4)
    router.complete(MESSAGES, GPT4)


def _openai_health(router: Router) -> dict:
    return next(entry for entry in router.health() if entry["name"] == "openai-fake")


def test_open_circuit_skips_the_provider(routing_config, fake_openai, fake_clock) -> None:
    router = routing_config(models=OPENAI_THEN_BUILTIN, failures=2, clock=fake_clock)
    _open_openai_circuit(router, fake_openai)

    result = router.complete(MESSAGES, GPT4)

    assert _used(result) == [("builtin", True, "")]
    assert len(fake_openai.requests) == 2


def test_health_reports_an_open_circuit_as_unhealthy(
    routing_config, fake_openai, fake_clock
) -> None:
    router = routing_config(models=OPENAI_THEN_BUILTIN, failures=2, clock=fake_clock)
    _open_openai_circuit(router, fake_openai)

    health = _openai_health(router)

    assert (health["healthy"], health["consecutive_failures"]) == (False, 2)


def test_open_circuit_stays_open_until_the_cooldown_has_passed(
    routing_config, fake_openai, fake_clock: FakeClock
) -> None:
    router = routing_config(models=OPENAI_THEN_BUILTIN, failures=2, cooldown=30, clock=fake_clock)
    _open_openai_circuit(router, fake_openai)
    fake_clock.advance(29.9)

    router.complete(MESSAGES, GPT4)

    assert len(fake_openai.requests) == 2


def test_successful_trial_after_the_cooldown_closes_the_circuit(
    routing_config, fake_openai, fake_clock: FakeClock
) -> None:
    router = routing_config(models=OPENAI_THEN_BUILTIN, failures=2, cooldown=30, clock=fake_clock)
    _open_openai_circuit(router, fake_openai)
    fake_clock.advance(30)
    fake_openai.enqueue_text("Back online.")

    result = router.complete(MESSAGES, GPT4)

    assert result.completion.text == "Back online."
    assert (_openai_health(router)["healthy"], _openai_health(router)["consecutive_failures"]) == (
        True,
        0,
    )


def test_failed_trial_after_the_cooldown_reopens_the_circuit(
    routing_config, fake_openai, fake_clock: FakeClock
) -> None:
    router = routing_config(models=OPENAI_THEN_BUILTIN, failures=2, cooldown=30, clock=fake_clock)
    _open_openai_circuit(router, fake_openai)
    fake_clock.advance(30)
    fake_openai.enqueue_status(500)
    router.complete(MESSAGES, GPT4)

    router.complete(MESSAGES, GPT4)

    assert len(fake_openai.requests) == 3
    assert _openai_health(router)["healthy"] is False


def test_non_retryable_errors_do_not_open_the_circuit(routing_config, fake_openai) -> None:
    router = routing_config(models=OPENAI_THEN_BUILTIN, failures=2)
    for _ in range(3):
        fake_openai.enqueue_status(400)
        with pytest.raises(AllCandidatesFailed):
            router.complete(MESSAGES, GPT4)

    assert _openai_health(router)["healthy"] is True


# --- health --------------------------------------------------------------------------------


def test_health_lists_every_provider_with_its_models_and_whether_it_is_configured(
    routing_config, monkeypatch
) -> None:
    router = routing_config()
    monkeypatch.delenv("TEST_ANTHROPIC_API_KEY")

    health = {entry["name"]: entry for entry in router.health()}

    assert health["openai-fake"] == {
        "name": "openai-fake",
        "kind": "openai",
        "models": ["gpt-4o"],
        "configured": True,
        "healthy": True,
        "consecutive_failures": 0,
    }
    assert health["anthropic-fake"]["configured"] is False
    assert health["builtin"]["models"] == ["builtin-responder"]


def test_health_contains_no_key_values(routing_config) -> None:
    router = routing_config()

    dumped = json.dumps(router.health())

    assert TEST_OPENAI_API_KEY not in dumped
    assert TEST_ANTHROPIC_API_KEY not in dumped


# --- the routing file ----------------------------------------------------------------------


def test_default_routing_file_declares_the_documented_aliases() -> None:
    config = load_routing_config(DEFAULT_ROUTING)

    assert {
        "gpt-4",
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-3.5-turbo",
        "claude-3-5-sonnet",
        "claude-3-haiku",
        "llama3",
        "builtin",
    } <= set(config.models)


def test_default_gpt4_tries_openai_first_and_the_builtin_last() -> None:
    candidates = load_routing_config(DEFAULT_ROUTING).models["gpt-4"]

    assert (candidates[0].provider, candidates[0].model) == ("openai", "gpt-4o")
    assert candidates[-1].provider == "builtin"


def test_default_gpt4_resolves_to_the_builtin_without_provider_keys(monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    router = Router(load_routing_config(DEFAULT_ROUTING))

    assert [(c.provider, c.model) for c in router.resolve("gpt-4")] == [
        ("builtin", "builtin-responder")
    ]


def test_default_gpt4_resolves_to_openai_once_its_key_is_set(monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    router = Router(load_routing_config(DEFAULT_ROUTING))

    assert router.resolve("gpt-4")[0].provider == "openai"


def test_default_llama3_uses_ollama_once_its_base_url_is_set(monkeypatch) -> None:
    monkeypatch.setenv("OLLAMA_BASE_URL", "http://127.0.0.1:11434/v1")
    router = Router(load_routing_config(DEFAULT_ROUTING))

    assert router.resolve("llama3")[0].provider == "ollama"


BROKEN_CONFIGS = [
    ("providers: [", "not valid YAML"),
    ("providers: {b: {kind: builtin}}\n", "models must be a non-empty mapping"),
    ("providers: {b: {kind: psychic}}\nmodels: {x: [{provider: b, model: m}]}", "kind must be"),
    ("providers: {b: {kind: builtin}}\nmodels: {x: [{provider: nope, model: m}]}", "'nope'"),
    (
        "providers: {o: {kind: openai}}\nmodels: {x: [{provider: o, model: m}]}",
        "models.x[0].cost_per_1k_input is missing",
    ),
    (
        "providers: {b: {kind: builtin}}\nmodels: {x: [{provider: b, model: m, "
        "cost_per_1k_input: -1}]}",
        "must be zero or more",
    ),
    (
        "providers: {b: {kind: builtin}}\ncircuit_breaker: {failures: 0}\n"
        "models: {x: [{provider: b, model: m}]}",
        "circuit_breaker.failures",
    ),
]


@pytest.mark.parametrize(("text", "message"), BROKEN_CONFIGS)
def test_invalid_routing_file_raises_routing_config_error_saying_what_is_wrong(
    tmp_path, text: str, message: str
) -> None:
    path = tmp_path / "llm_routing.yaml"
    path.write_text(text)

    with pytest.raises(RoutingConfigError, match=r"llm_routing\.yaml") as caught:
        load_routing_config(path)

    assert message in str(caught.value)


def test_a_key_pasted_into_the_routing_file_is_rejected_without_echoing_it(tmp_path) -> None:
    path = tmp_path / "llm_routing.yaml"
    path.write_text(
        "providers: {o: {kind: openai, api_key: sk-live-secret-123456}}\n"
        "models: {x: [{provider: o, model: m, cost_per_1k_input: 0, cost_per_1k_output: 0}]}"
    )

    with pytest.raises(RoutingConfigError, match="api_key_env") as caught:
        load_routing_config(path)

    assert "sk-live-secret-123456" not in str(caught.value)


def test_router_reload_of_an_invalid_file_raises_and_keeps_the_old_router(routing_config) -> None:
    router = routing_config()
    django_settings.LLM_ROUTING_PATH.write_text("providers: [")

    with pytest.raises(RoutingConfigError):
        router_reload()

    assert get_router() is router


def _edit_routing_file(path: Path, text: str) -> None:
    path.write_text(text)
    stat = path.stat()
    # A distinct mtime even on filesystems with coarse timestamps.
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


ONLY_BUILTIN = "providers: {b: {kind: builtin}}\nmodels: {solo: [{provider: b, model: m}]}\n"


def test_get_router_picks_up_an_edit_of_the_file(routing_config, fake_clock: FakeClock) -> None:
    routing_config(clock=fake_clock)
    _edit_routing_file(django_settings.LLM_ROUTING_PATH, ONLY_BUILTIN)
    fake_clock.advance(1)

    assert get_router().aliases() == ["solo"]


def test_get_router_checks_the_file_at_most_once_a_second(
    routing_config, fake_clock: FakeClock
) -> None:
    router = routing_config(clock=fake_clock)
    _edit_routing_file(django_settings.LLM_ROUTING_PATH, ONLY_BUILTIN)
    fake_clock.advance(0.5)

    assert get_router() is router


def test_get_router_keeps_the_last_good_router_after_an_invalid_edit(
    routing_config, fake_clock: FakeClock, caplog
) -> None:
    router = routing_config(clock=fake_clock)
    _edit_routing_file(django_settings.LLM_ROUTING_PATH, "providers: [")
    fake_clock.advance(1)

    with caplog.at_level(logging.ERROR, logger="agents.runtime.router"):
        current = get_router()

    assert current is router
    assert "keeping the previous LLM routing" in caplog.text


def test_get_router_logs_an_invalid_edit_once(
    routing_config, fake_clock: FakeClock, caplog
) -> None:
    routing_config(clock=fake_clock)
    _edit_routing_file(django_settings.LLM_ROUTING_PATH, "providers: [")

    with caplog.at_level(logging.ERROR, logger="agents.runtime.router"):
        for _ in range(3):
            fake_clock.advance(1)
            get_router()

    assert caplog.text.count("keeping the previous LLM routing") == 1


def test_get_router_picks_up_a_fix_after_an_invalid_edit(
    routing_config, fake_clock: FakeClock
) -> None:
    routing_config(clock=fake_clock)
    _edit_routing_file(django_settings.LLM_ROUTING_PATH, "providers: [")
    fake_clock.advance(1)
    get_router()
    _edit_routing_file(django_settings.LLM_ROUTING_PATH, ONLY_BUILTIN)
    fake_clock.advance(1)

    assert get_router().aliases() == ["solo"]

"""Provider adapters against fake vendor servers (real HTTP, real SDKs) and the builtin."""

import socket
from decimal import Decimal

import pytest

from agents.runtime import ChatMessage, Completion, ModelConfig, ProviderError, ProviderSpec
from agents.runtime.providers import Provider, provider_build
from agents.runtime.providers.builtin import RESTATE_LIMIT
from tests.agents.conftest import TEST_ANTHROPIC_API_KEY, TEST_OPENAI_API_KEY
from tests.agents.llm_servers import FakeAnthropicServer, FakeOpenAIServer

CEO = "You are Mimi, the CEO of 371OS. Keep answers short."
CFO = "You are Rafael, the CFO of 371OS."
MESSAGES = [ChatMessage("system", CEO), ChatMessage("user", "Should we hire two engineers?")]
CONFIG = ModelConfig(model="gpt-4", temperature=0.2, max_tokens=300, top_p=0.9)


@pytest.fixture
def openai_provider(fake_openai: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> Provider:
    monkeypatch.setenv("TEST_OPENAI_API_KEY", TEST_OPENAI_API_KEY)
    spec = ProviderSpec(
        name="openai-fake",
        kind="openai",
        base_url=fake_openai.base_url,
        api_key_env="TEST_OPENAI_API_KEY",
    )
    return provider_build(spec=spec)


@pytest.fixture
def anthropic_provider(
    fake_anthropic: FakeAnthropicServer, monkeypatch: pytest.MonkeyPatch
) -> Provider:
    monkeypatch.setenv("TEST_ANTHROPIC_API_KEY", TEST_ANTHROPIC_API_KEY)
    spec = ProviderSpec(
        name="anthropic-fake",
        kind="anthropic",
        base_url=fake_anthropic.base_url,
        api_key_env="TEST_ANTHROPIC_API_KEY",
    )
    return provider_build(spec=spec)


@pytest.fixture
def builtin() -> Provider:
    return provider_build(spec=ProviderSpec(name="builtin", kind="builtin"))


def _complete(provider: Provider, messages: list[ChatMessage] = MESSAGES) -> Completion:
    return provider.complete(messages, CONFIG, model="some-model", timeout=5)


def _error_of(provider: Provider) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        _complete(provider)
    return caught.value


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- OpenAI-compatible ---------------------------------------------------------------------


def test_openai_complete_returns_the_text_and_the_servers_usage(
    openai_provider: Provider, fake_openai: FakeOpenAIServer
) -> None:
    fake_openai.enqueue_text("Yes, hire them.", prompt_tokens=41, completion_tokens=5)

    completion = _complete(openai_provider)

    assert (completion.text, completion.prompt_tokens, completion.completion_tokens) == (
        "Yes, hire them.",
        41,
        5,
    )
    assert (completion.provider, completion.model) == ("openai-fake", "some-model")


def test_openai_request_carries_messages_options_and_the_key_from_the_env_var(
    openai_provider: Provider, fake_openai: FakeOpenAIServer
) -> None:
    _complete(openai_provider)

    body = fake_openai.requests[0]
    assert body["messages"] == [
        {"role": "system", "content": CEO},
        {"role": "user", "content": "Should we hire two engineers?"},
    ]
    assert (body["model"], body["temperature"], body["max_tokens"], body["top_p"]) == (
        "some-model",
        0.2,
        300,
        0.9,
    )
    assert fake_openai.headers[0]["authorization"] == f"Bearer {TEST_OPENAI_API_KEY}"


def test_openai_stream_yields_deltas_then_a_completion_with_the_servers_usage(
    openai_provider: Provider, fake_openai: FakeOpenAIServer
) -> None:
    fake_openai.enqueue_text("Yes, hire them now.", prompt_tokens=41, completion_tokens=6)

    items = list(openai_provider.stream(MESSAGES, CONFIG, model="some-model", timeout=5))

    assert items[:-1] == ["Yes, ", "hire ", "them ", "now."]
    assert items[-1].text == "Yes, hire them now."
    assert (items[-1].prompt_tokens, items[-1].completion_tokens) == (41, 6)
    assert fake_openai.requests[0]["stream_options"] == {"include_usage": True}


def test_openai_stream_without_usage_counts_tokens_itself(
    openai_provider: Provider, fake_openai: FakeOpenAIServer
) -> None:
    fake_openai.enqueue_text("Yes, hire them.", include_usage=False)

    completion = list(openai_provider.stream(MESSAGES, CONFIG, model="some-model", timeout=5))[-1]

    # "Yes , hire them ." and the two messages, by the \w+|[^\w\s] tokenizer.
    assert (completion.prompt_tokens, completion.completion_tokens) == (19, 5)


def test_openai_provider_without_api_key_env_sends_a_placeholder_key(
    fake_openai: FakeOpenAIServer,
) -> None:
    spec = ProviderSpec(name="ollama", kind="openai", base_url=fake_openai.base_url)

    _complete(provider_build(spec=spec))

    assert fake_openai.headers[0]["authorization"] == "Bearer not-needed"


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (500, "server_error", True),
        (503, "server_error", True),
        (429, "rate_limited", True),
        (400, "bad_request", False),
        (422, "bad_request", False),
        (401, "authentication", False),
        (403, "authentication", False),
    ],
)
def test_openai_http_status_maps_to_a_provider_error_code(
    openai_provider: Provider,
    fake_openai: FakeOpenAIServer,
    status: int,
    code: str,
    retryable: bool,
) -> None:
    fake_openai.enqueue_status(status)

    error = _error_of(openai_provider)

    assert (error.code, error.retryable) == (code, retryable)


def test_openai_slow_server_raises_a_retryable_timeout(fake_openai: FakeOpenAIServer) -> None:
    spec = ProviderSpec(name="slow", kind="openai", base_url=fake_openai.base_url)
    fake_openai.enqueue_delay(2)

    with pytest.raises(ProviderError) as caught:
        provider_build(spec=spec).complete(MESSAGES, CONFIG, model="m", timeout=0.5)

    assert (caught.value.code, caught.value.retryable) == ("timeout", True)


def test_openai_refused_connection_raises_a_retryable_connection_error() -> None:
    spec = ProviderSpec(
        name="down", kind="openai", base_url=f"http://127.0.0.1:{_unused_port()}/v1"
    )

    error = _error_of(provider_build(spec=spec))

    assert (error.code, error.retryable) == ("connection_error", True)


def test_openai_empty_reply_raises_a_final_empty_response(
    openai_provider: Provider, fake_openai: FakeOpenAIServer
) -> None:
    fake_openai.enqueue_text("")

    error = _error_of(openai_provider)

    assert (error.code, error.retryable) == ("empty_response", False)


def test_openai_authentication_error_message_holds_no_key(
    openai_provider: Provider, fake_openai: FakeOpenAIServer
) -> None:
    fake_openai.enqueue_status(401)

    error = _error_of(openai_provider)

    assert TEST_OPENAI_API_KEY not in str(error)
    assert error.__cause__ is None


# --- Anthropic -----------------------------------------------------------------------------


def test_anthropic_sends_system_messages_as_the_system_parameter(
    anthropic_provider: Provider, fake_anthropic: FakeAnthropicServer
) -> None:
    _complete(anthropic_provider)

    body = fake_anthropic.requests[0]
    assert body["system"] == CEO
    assert body["messages"] == [{"role": "user", "content": "Should we hire two engineers?"}]
    assert (body["model"], body["max_tokens"]) == ("some-model", 300)
    # This SDK sends the key as a bearer token; older ones used x-api-key. Either will do.
    assert TEST_ANTHROPIC_API_KEY in " ".join(fake_anthropic.headers[0].values())


def test_anthropic_complete_returns_the_text_and_the_servers_usage(
    anthropic_provider: Provider, fake_anthropic: FakeAnthropicServer
) -> None:
    fake_anthropic.enqueue_text("Hire one first.", prompt_tokens=37, completion_tokens=4)

    completion = _complete(anthropic_provider)

    assert (completion.text, completion.prompt_tokens, completion.completion_tokens) == (
        "Hire one first.",
        37,
        4,
    )
    assert completion.provider == "anthropic-fake"


def test_anthropic_stream_yields_deltas_then_a_completion_with_the_servers_usage(
    anthropic_provider: Provider, fake_anthropic: FakeAnthropicServer
) -> None:
    fake_anthropic.enqueue_text("Hire one first.", prompt_tokens=37, completion_tokens=4)

    items = list(anthropic_provider.stream(MESSAGES, CONFIG, model="some-model", timeout=5))

    assert items[:-1] == ["Hire ", "one ", "first."]
    assert (items[-1].text, items[-1].prompt_tokens, items[-1].completion_tokens) == (
        "Hire one first.",
        37,
        4,
    )
    assert fake_anthropic.requests[0]["system"] == CEO


@pytest.mark.parametrize(
    ("status", "code"),
    [(529, "server_error"), (500, "server_error"), (429, "rate_limited"), (401, "authentication")],
)
def test_anthropic_http_status_maps_to_a_provider_error_code(
    anthropic_provider: Provider, fake_anthropic: FakeAnthropicServer, status: int, code: str
) -> None:
    fake_anthropic.enqueue_status(status)

    assert _error_of(anthropic_provider).code == code


def test_anthropic_error_event_mid_stream_raises_server_error_after_the_deltas(
    anthropic_provider: Provider, fake_anthropic: FakeAnthropicServer
) -> None:
    fake_anthropic.enqueue_broken_stream("Hire one")
    received: list[object] = []

    with pytest.raises(ProviderError) as caught:
        for item in anthropic_provider.stream(MESSAGES, CONFIG, model="m", timeout=5):
            received.append(item)

    assert received == ["Hire ", "one"]
    assert caught.value.code == "server_error"


# --- builtin -------------------------------------------------------------------------------


def test_builtin_gives_the_same_reply_to_the_same_messages(builtin: Provider) -> None:
    assert _complete(builtin).text == _complete(builtin).text


def test_builtin_speaks_as_the_persona_with_the_roles_next_step(builtin: Provider) -> None:
    text = _complete(builtin).text

    assert "Mimi, CEO here" in text
    assert "align the team's priorities" in text


def test_builtin_voice_changes_with_the_persona(builtin: Provider) -> None:
    cfo = [ChatMessage("system", CFO), MESSAGES[1]]

    text = _complete(builtin, cfo).text

    assert "Rafael, CFO here" in text
    assert "budget impact" in text
    assert text != _complete(builtin).text


def test_builtin_understands_a_spelled_out_title(builtin: Provider) -> None:
    cto = [ChatMessage("system", "You are Ada, our Chief Technology Officer."), MESSAGES[1]]

    assert "draft a technical plan" in _complete(builtin, cto).text


def test_builtin_without_a_persona_speaks_as_the_assistant(builtin: Provider) -> None:
    text = _complete(builtin, [ChatMessage("user", "Status?")]).text

    assert "the assistant here" in text
    assert "break this into concrete tasks" in text


def test_builtin_says_plainly_that_it_is_offline(builtin: Provider) -> None:
    text = _complete(builtin).text

    assert text.startswith("[offline responder]")
    assert "not from a language model" in text


def test_builtin_restates_the_latest_user_message_trimmed(builtin: Provider) -> None:
    messages = [
        ChatMessage("user", "an older question"),
        ChatMessage("assistant", "an answer"),
        ChatMessage("user", "  plan   the launch " + "x" * 500),
    ]

    text = _complete(builtin, messages).text

    restated = text.split('"')[1]
    assert restated.startswith("plan the launch x")
    assert len(restated) == RESTATE_LIMIT
    assert "older question" not in text


def test_builtin_counts_positive_tokens_and_costs_nothing(builtin: Provider) -> None:
    completion = _complete(builtin)

    assert completion.prompt_tokens > 0
    assert completion.completion_tokens > 0
    assert completion.cost_usd == Decimal(0)


def test_builtin_stream_deltas_join_into_the_complete_reply(builtin: Provider) -> None:
    items = list(builtin.stream(MESSAGES, CONFIG, model="builtin-responder", timeout=5))

    assert len(items) > 2
    assert "".join(items[:-1]) == items[-1].text == _complete(builtin).text

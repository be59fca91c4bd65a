"""Any OpenAI-compatible chat endpoint (OpenAI, OpenRouter, Ollama, vLLM, llama.cpp, LM Studio),
through the official `openai` SDK."""

import time
from collections.abc import Generator
from decimal import Decimal

import openai

from agents.runtime.config import ProviderSpec
from agents.runtime.providers.common import ClientCache, status_error
from agents.runtime.tokens import count_prompt_tokens, count_tokens
from agents.runtime.types import ChatMessage, Completion, ModelConfig, ProviderError

# Local servers (Ollama, llama.cpp) need no key, but the SDK refuses to start without one.
NO_KEY_PLACEHOLDER = "not-needed"


def _client(api_key: str, base_url: str | None, timeout: float) -> openai.OpenAI:
    # max_retries=0: retrying is the router's job, across candidates, not the SDK's.
    return openai.OpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)


class OpenAICompatibleProvider:
    kind = "openai"

    def __init__(self, *, spec: ProviderSpec) -> None:
        self.name = spec.name
        self._spec = spec
        self._clients: ClientCache[openai.OpenAI] = ClientCache(_client)

    def _request(
        self, messages: list[ChatMessage], config: ModelConfig, *, model: str, timeout: float
    ) -> tuple[openai.OpenAI, dict]:
        client = self._clients.get(
            api_key=self._spec.api_key() or NO_KEY_PLACEHOLDER,
            base_url=self._spec.resolved_base_url(),
            timeout=timeout,
        )
        params = {
            "model": model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "temperature": config.temperature,
            # max_tokens rather than max_completion_tokens: it is the one every compatible
            # server (Ollama, vLLM, llama.cpp, LM Studio) understands.
            "max_tokens": config.max_tokens,
            "top_p": config.top_p,
            "frequency_penalty": config.frequency_penalty,
            "presence_penalty": config.presence_penalty,
        }
        return client, params

    def _error(self, exc: openai.OpenAIError, *, model: str) -> ProviderError:
        if isinstance(exc, openai.APITimeoutError):
            return ProviderError("timeout", f"{self.name} (model {model}) did not answer in time")
        if isinstance(exc, openai.APIConnectionError):
            return ProviderError("connection_error", f"cannot reach {self.name} (model {model})")
        if isinstance(exc, openai.APIStatusError):
            body = exc.body if isinstance(exc.body, dict) else {}
            message = body.get("message")
            return status_error(
                status=exc.status_code,
                provider=self.name,
                model=model,
                server_message=message if isinstance(message, str) else None,
                secret=self._spec.api_key(),
            )
        # An error event inside a stream, or a response the SDK could not parse.
        return ProviderError("server_error", f"{self.name} (model {model}) sent an unusable reply")

    def complete(
        self, messages: list[ChatMessage], config: ModelConfig, *, model: str, timeout: float
    ) -> Completion:
        client, params = self._request(messages, config, model=model, timeout=timeout)
        started = time.perf_counter()
        try:
            response = client.chat.completions.create(**params)
        except (openai.AuthenticationError, openai.PermissionDeniedError):
            raise ProviderError("authentication", f"{self.name} rejected the credentials") from None
        except openai.OpenAIError as exc:
            raise self._error(exc, model=model) from exc
        text = (response.choices[0].message.content or "") if response.choices else ""
        if not text.strip():
            raise ProviderError("empty_response", f"{self.name} (model {model}) returned no text")
        usage = response.usage
        return Completion(
            text=text,
            model=model,
            provider=self.name,
            prompt_tokens=usage.prompt_tokens if usage else count_prompt_tokens(messages),
            completion_tokens=usage.completion_tokens if usage else count_tokens(text),
            latency_ms=(time.perf_counter() - started) * 1000,
            cost_usd=Decimal(0),
        )

    def stream(
        self, messages: list[ChatMessage], config: ModelConfig, *, model: str, timeout: float
    ) -> Generator[str | Completion, None, None]:
        client, params = self._request(messages, config, model=model, timeout=timeout)
        started = time.perf_counter()
        parts: list[str] = []
        usage = None
        try:
            response = client.chat.completions.create(
                **params, stream=True, stream_options={"include_usage": True}
            )
            with response:
                for chunk in response:
                    usage = chunk.usage or usage
                    for choice in chunk.choices:
                        if choice.delta and choice.delta.content:
                            parts.append(choice.delta.content)
                            yield choice.delta.content
        except (openai.AuthenticationError, openai.PermissionDeniedError):
            raise ProviderError("authentication", f"{self.name} rejected the credentials") from None
        except openai.OpenAIError as exc:
            raise self._error(exc, model=model) from exc
        text = "".join(parts)
        if not text.strip():
            raise ProviderError("empty_response", f"{self.name} (model {model}) returned no text")
        yield Completion(
            text=text,
            model=model,
            provider=self.name,
            # Some compatible servers ignore include_usage; then we count ourselves.
            prompt_tokens=usage.prompt_tokens if usage else count_prompt_tokens(messages),
            completion_tokens=usage.completion_tokens if usage else count_tokens(text),
            latency_ms=(time.perf_counter() - started) * 1000,
            cost_usd=Decimal(0),
        )

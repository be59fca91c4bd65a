"""Anthropic's Messages API through the official `anthropic` SDK.

Sampling options (temperature, top_p, penalties) are not sent: SDK 1.0 dropped them from the
method signatures and current Claude models answer 400 to them, which would stop routing
instead of falling back. `max_tokens` is sent (the API requires it).
"""

import time
from collections.abc import Generator

import anthropic
import httpx2

from agents.runtime.providers.common import SdkProvider, status_error
from agents.runtime.types import ChatMessage, Completion, ModelConfig, ProviderError

_EVENT_ERROR_CODES = {
    "overloaded_error": "server_error",
    "api_error": "server_error",
    "rate_limit_error": "rate_limited",
    "timeout_error": "timeout",
    "invalid_request_error": "bad_request",
    "not_found_error": "bad_request",
    "request_too_large": "bad_request",
    "authentication_error": "authentication",
    "permission_error": "authentication",
}


def _client(api_key: str, base_url: str | None, timeout: float) -> anthropic.Anthropic:
    # An explicit key also stops the SDK from looking for credentials in ANTHROPIC_* variables
    # and profile files: the routing file is the only place that says which key is used.
    return anthropic.Anthropic(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)


class AnthropicProvider(SdkProvider[anthropic.Anthropic]):
    kind = "anthropic"
    client_factory = staticmethod(_client)

    def _request(
        self, messages: list[ChatMessage], config: ModelConfig, *, model: str, timeout: float
    ) -> tuple[anthropic.Anthropic, dict]:
        client = self._client(timeout)
        system = "\n\n".join(m.content for m in messages if m.role == "system")
        params: dict = {
            "model": model,
            "max_tokens": config.max_tokens,
            "messages": [
                {"role": m.role, "content": m.content} for m in messages if m.role != "system"
            ],
        }
        if system:
            params["system"] = system
        return client, params

    def _error(self, exc: Exception, *, model: str) -> ProviderError:
        if isinstance(exc, anthropic.APITimeoutError | httpx2.TimeoutException):
            return ProviderError("timeout", f"{self.name} (model {model}) did not answer in time")
        if isinstance(exc, anthropic.APIConnectionError | httpx2.TransportError):
            return ProviderError("connection_error", f"cannot reach {self.name} (model {model})")
        if isinstance(exc, anthropic.APIStatusError) and exc.status_code < 400:
            # An `error` event inside a stream that began with 200: only its type says what.
            code = _EVENT_ERROR_CODES.get(exc.type or "", "server_error")
            return ProviderError(code, f"{self.name} (model {model}) sent {exc.type} mid-stream")
        if isinstance(exc, anthropic.APIStatusError):
            return status_error(
                status=exc.status_code,
                provider=self.name,
                model=model,
                server_message=exc.api_message,
                secret=self._spec.api_key(),
            )
        return ProviderError("server_error", f"{self.name} (model {model}) sent an unusable reply")

    def _from_message(
        self, message: anthropic.types.Message, *, model: str, started: float
    ) -> Completion:
        return self._completion(
            "".join(block.text for block in message.content if block.type == "text"),
            model=model,
            started=started,
            prompt_tokens=message.usage.input_tokens,
            completion_tokens=message.usage.output_tokens,
        )

    def complete(
        self, messages: list[ChatMessage], config: ModelConfig, *, model: str, timeout: float
    ) -> Completion:
        client, params = self._request(messages, config, model=model, timeout=timeout)
        started = time.perf_counter()
        try:
            message = client.messages.create(**params)
        except (anthropic.AuthenticationError, anthropic.PermissionDeniedError):
            raise ProviderError("authentication", f"{self.name} rejected the credentials") from None
        except (anthropic.AnthropicError, httpx2.TransportError) as exc:
            raise self._error(exc, model=model) from exc
        return self._from_message(message, model=model, started=started)

    def stream(
        self, messages: list[ChatMessage], config: ModelConfig, *, model: str, timeout: float
    ) -> Generator[str | Completion, None, None]:
        client, params = self._request(messages, config, model=model, timeout=timeout)
        started = time.perf_counter()
        try:
            with client.messages.stream(**params) as stream:
                for delta in stream.text_stream:
                    if delta:
                        yield delta
                message = stream.get_final_message()
        except (anthropic.AuthenticationError, anthropic.PermissionDeniedError):
            raise ProviderError("authentication", f"{self.name} rejected the credentials") from None
        # Mid-stream read errors reach us as httpx2's own: this SDK does not wrap them.
        except (anthropic.AnthropicError, httpx2.TransportError) as exc:
            raise self._error(exc, model=model) from exc
        yield self._from_message(message, model=model, started=started)

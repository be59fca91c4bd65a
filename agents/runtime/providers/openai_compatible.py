"""Any OpenAI-compatible chat endpoint (OpenAI, OpenRouter, Ollama, vLLM, llama.cpp, LM Studio),
through the official `openai` SDK."""

import time
from collections.abc import Generator

import openai
from openai.types import CompletionUsage

from agents.runtime.providers.common import SdkProvider, status_error
from agents.runtime.tokens import count_prompt_tokens, count_tokens
from agents.runtime.types import ChatMessage, Completion, ModelConfig, ProviderError


def _client(api_key: str, base_url: str | None, timeout: float) -> openai.OpenAI:
    # max_retries=0: retrying is the router's job, across candidates, not the SDK's.
    return openai.OpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)


class OpenAICompatibleProvider(SdkProvider[openai.OpenAI]):
    kind = "openai"
    client_factory = staticmethod(_client)

    def _request(
        self, messages: list[ChatMessage], config: ModelConfig, *, model: str, timeout: float
    ) -> tuple[openai.OpenAI, dict]:
        client = self._client(timeout)
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

    def _from_text(
        self,
        text: str,
        usage: CompletionUsage | None,
        *,
        messages: list[ChatMessage],
        model: str,
        started: float,
    ) -> Completion:
        # Some compatible servers report no usage (or ignore include_usage): we count then.
        return self._completion(
            text,
            model=model,
            started=started,
            prompt_tokens=usage.prompt_tokens if usage else count_prompt_tokens(messages),
            completion_tokens=usage.completion_tokens if usage else count_tokens(text),
        )

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
        return self._from_text(
            text, response.usage, messages=messages, model=model, started=started
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
        yield self._from_text(
            "".join(parts), usage, messages=messages, model=model, started=started
        )

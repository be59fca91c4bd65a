"""Provider adapters: each turns ChatMessages into one call to one kind of LLM API.

Contract shared by every kind (the router relies on it):
- `complete(...)` returns a Completion or raises ProviderError; `stream(...)` yields str deltas
  and then exactly one Completion, or raises ProviderError (possibly after some deltas).
- Nothing else escapes: SDK and transport errors are mapped to ProviderError codes.
- `cost_usd` is 0 here; prices belong to the routing candidate, and the router fills them in.
"""

from collections.abc import Generator
from typing import Protocol

from agents.runtime.config import ProviderSpec
from agents.runtime.types import ChatMessage, Completion, ModelConfig


class Provider(Protocol):
    name: str
    kind: str

    def complete(
        self, messages: list[ChatMessage], config: ModelConfig, *, model: str, timeout: float
    ) -> Completion: ...

    def stream(
        self, messages: list[ChatMessage], config: ModelConfig, *, model: str, timeout: float
    ) -> Generator[str | Completion, None, None]: ...


def provider_build(*, spec: ProviderSpec) -> Provider:
    # Imported here so that a process that only uses the builtin never loads the SDKs.
    if spec.kind == "openai":
        from agents.runtime.providers.openai_compatible import OpenAICompatibleProvider

        return OpenAICompatibleProvider(spec=spec)
    if spec.kind == "anthropic":
        from agents.runtime.providers.anthropic_messages import AnthropicProvider

        return AnthropicProvider(spec=spec)
    if spec.kind == "builtin":
        from agents.runtime.providers.builtin import BuiltinProvider

        return BuiltinProvider(name=spec.name)
    raise ValueError(f"unknown provider kind {spec.kind!r}")

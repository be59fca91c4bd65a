"""Pieces shared by the SDK-backed providers: status → error code, redaction, client reuse."""

import re
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Generic, TypeVar

from agents.runtime.config import ProviderSpec
from agents.runtime.types import Completion, ProviderError

_KEY_LIKE = re.compile(r"\b(?:sk|pk|rk|key|api)[-_][A-Za-z0-9_*.-]{6,}", re.IGNORECASE)
_DETAIL_LIMIT = 300

ClientT = TypeVar("ClientT")

# Local servers (Ollama, llama.cpp) need no key, but the SDKs refuse to start without one.
NO_KEY_PLACEHOLDER = "not-needed"


def code_for_status(status: int) -> str:
    if status in (401, 403):
        return "authentication"
    if status == 429:
        return "rate_limited"
    if status == 408:
        return "timeout"
    if status >= 500:
        return "server_error"
    # 400, 422 and the other 4xx (404: no such model at this endpoint) are our request's fault;
    # another provider would most likely reject it too, so they stop the routing.
    return "bad_request"


def redact(text: str, *, secret: str | None) -> str:
    """Remove the configured key and anything shaped like a key from provider-supplied text."""
    if secret:
        text = text.replace(secret, "[redacted]")
    return _KEY_LIKE.sub("[redacted]", text)[:_DETAIL_LIMIT]


def status_error(
    *, status: int, provider: str, model: str, server_message: str | None, secret: str | None
) -> ProviderError:
    code = code_for_status(status)
    detail = f"HTTP {status} from {provider} (model {model})"
    # Only a rejected request's explanation is worth keeping ("max_tokens is too large"); an
    # authentication error's text is where providers echo masked keys, so it is never kept.
    if code == "bad_request" and server_message:
        detail += f": {redact(server_message, secret=secret)}"
    return ProviderError(code, detail)


class ClientCache(Generic[ClientT]):
    """One SDK client per provider, rebuilt when its key, URL or timeout changes.

    Reusing the client keeps its connection pool; rebuilding on change means a key exported
    (or rotated) after startup is used without a reload. SDK clients are thread-safe.
    """

    def __init__(self, factory: Callable[[str, str | None, float], ClientT]) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._client: ClientT | None = None
        self._settings: tuple[str, str | None, float] | None = None

    def get(self, *, api_key: str, base_url: str | None, timeout: float) -> ClientT:
        settings = (api_key, base_url, timeout)
        with self._lock:
            if self._client is None or self._settings != settings:
                self._client = self._factory(api_key, base_url, timeout)
                self._settings = settings
            return self._client


class SdkProvider(Generic[ClientT]):
    """A provider entry served through a vendor SDK. Subclasses set `kind` and
    `client_factory`: (api_key, base_url, timeout) → a client that never retries by itself."""

    kind: str
    client_factory: Callable[[str, str | None, float], ClientT]

    def __init__(self, *, spec: ProviderSpec) -> None:
        self.name = spec.name
        self._spec = spec
        self._clients: ClientCache[ClientT] = ClientCache(self.client_factory)

    def _client(self, timeout: float) -> ClientT:
        """The client for the key and URL as configured now (read at every call)."""
        return self._clients.get(
            api_key=self._spec.api_key() or NO_KEY_PLACEHOLDER,
            base_url=self._spec.resolved_base_url(),
            timeout=timeout,
        )

    def _completion(
        self, text: str, *, model: str, started: float, prompt_tokens: int, completion_tokens: int
    ) -> Completion:
        """A call's answer; no text at all is `empty_response`. The cost is left at 0 for the
        router, which knows the candidate's prices."""
        if not text.strip():
            raise ProviderError("empty_response", f"{self.name} (model {model}) returned no text")
        return Completion(
            text=text,
            model=model,
            provider=self.name,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            latency_ms=(time.perf_counter() - started) * 1000,
            cost_usd=Decimal(0),
        )

"""Pieces shared by the SDK-backed providers: status → error code, redaction, client reuse."""

import re
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from agents.runtime.types import ProviderError

_KEY_LIKE = re.compile(r"\b(?:sk|pk|rk|key|api)[-_][A-Za-z0-9_*.-]{6,}", re.IGNORECASE)
_DETAIL_LIMIT = 300

ClientT = TypeVar("ClientT")


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

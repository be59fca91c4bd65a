"""Values and errors shared by the router, the providers and their callers.

Everything here is plain data: the agent services store `Attempt`s in the usage ledger and show
`Completion`s to users, so no field ever holds an API key or a provider's raw error text.
"""

from dataclasses import dataclass
from decimal import Decimal

__all__ = [
    "AllCandidatesFailed",
    "Attempt",
    "Candidate",
    "ChatMessage",
    "Completion",
    "ModelConfig",
    "ProviderError",
    "RoutingConfigError",
    "UnknownModel",
]

RETRYABLE_CODES = frozenset({"timeout", "rate_limited", "server_error", "connection_error"})
FINAL_CODES = frozenset({"bad_request", "authentication", "empty_response"})


@dataclass(frozen=True)
class ChatMessage:
    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass(frozen=True)
class ModelConfig:
    model: str  # an alias from llm_routing.yaml, not a provider's model name
    temperature: float = 0.7
    max_tokens: int = 1024
    top_p: float = 1.0
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0


@dataclass(frozen=True)
class Candidate:
    """One way to serve an alias: a provider entry, its model name there, and its price."""

    provider: str
    model: str
    cost_per_1k_input: Decimal = Decimal(0)
    cost_per_1k_output: Decimal = Decimal(0)

    def cost(self, *, prompt_tokens: int, completion_tokens: int) -> Decimal:
        """Exact (unrounded) price: the ledger decides how many places it keeps."""
        return (
            prompt_tokens * self.cost_per_1k_input + completion_tokens * self.cost_per_1k_output
        ) / 1000


@dataclass(frozen=True)
class Completion:
    text: str
    model: str  # the concrete model that answered, e.g. "gpt-4o"
    provider: str  # the provider entry's name in llm_routing.yaml
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    cost_usd: Decimal


@dataclass(frozen=True)
class Attempt:
    """One provider call, successful or not; the caller writes each one to the usage ledger."""

    provider: str
    model: str
    success: bool
    error_code: str  # "" on success
    prompt_tokens: int
    completion_tokens: int
    cost_usd: Decimal
    latency_ms: float


class ProviderError(Exception):
    """A provider call failed; `code` says how, `retryable` whether another candidate may help.

    The message is written by us from the status and the code, never copied from the provider's
    response, because some providers echo (part of) the API key back in authentication errors.
    """

    def __init__(self, code: str, detail: str = "") -> None:
        if code not in RETRYABLE_CODES | FINAL_CODES:
            raise ValueError(f"unknown provider error code {code!r}")
        self.code = code
        self.retryable = code in RETRYABLE_CODES
        super().__init__(f"{code}: {detail}" if detail else code)


class UnknownModel(ValueError):
    """The alias is not in llm_routing.yaml; the message lists the ones that are."""

    def __init__(self, alias: str, known_aliases: list[str]) -> None:
        self.alias = alias
        self.known_aliases = known_aliases
        super().__init__(
            f"unknown model {alias!r}; configured models: {', '.join(known_aliases) or '(none)'}"
        )


class AllCandidatesFailed(Exception):
    """No candidate produced a completion; `attempts` holds every call that was made."""

    def __init__(self, message: str, *, attempts: list[Attempt]) -> None:
        self.attempts = attempts
        super().__init__(message)


class RoutingConfigError(ValueError):
    """llm_routing.yaml is invalid; the message names the file and the offending entry."""

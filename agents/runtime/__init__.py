"""The agent runtime: calling LLMs through the adaptive router (no Django models, no database).

    router = get_router()
    result = router.complete([ChatMessage("system", persona), ChatMessage("user", text)],
                             ModelConfig(model="gpt-4"))
    result.completion.text, result.attempts  # attempts → the usage ledger

Routing (aliases, providers, prices, circuit breaker) lives in config/llm_routing.yaml.
"""

from agents.runtime.config import (
    ProviderSpec,
    RoutingConfig,
    load_routing_config,
    routing_config_parse,
)
from agents.runtime.router import Router, RouterResult, get_router, router_reload
from agents.runtime.types import (
    AllCandidatesFailed,
    Attempt,
    Candidate,
    ChatMessage,
    Completion,
    ModelConfig,
    ProviderError,
    RoutingConfigError,
    UnknownModel,
)

__all__ = [
    "AllCandidatesFailed",
    "Attempt",
    "Candidate",
    "ChatMessage",
    "Completion",
    "ModelConfig",
    "ProviderError",
    "ProviderSpec",
    "Router",
    "RouterResult",
    "RoutingConfig",
    "RoutingConfigError",
    "UnknownModel",
    "get_router",
    "load_routing_config",
    "router_reload",
    "routing_config_parse",
]

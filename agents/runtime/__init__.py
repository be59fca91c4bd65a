"""The agent runtime: calling LLMs through the adaptive router (no Django models, no database).

    router = get_router()
    result = router.complete([ChatMessage("system", persona), ChatMessage("user", text)],
                             ModelConfig(model="gpt-4"))
    result.completion.text, result.attempts  # attempts → the usage ledger

Routing (aliases, providers, prices, circuit breaker) lives in config/llm_routing.yaml.
"""

# The public names of each module, gathered as asyncio's __init__ does: one list per module.
from agents.runtime import config, router, types
from agents.runtime.config import *  # noqa: F403
from agents.runtime.router import *  # noqa: F403
from agents.runtime.types import *  # noqa: F403

__all__ = [*config.__all__, *router.__all__, *types.__all__]

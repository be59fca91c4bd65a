"""The adaptive router: an alias ("gpt-4") → the first healthy, configured candidate that answers.

Candidates are tried in the order the routing file lists them. A retryable failure (timeout,
429, 5xx, refused connection) moves on to the next candidate; a final one (bad request, rejected
key, empty reply) stops at once, because another provider would not fix it. Every call made is
returned as an Attempt so that the caller can charge it to the usage ledger, failures included.

`get_router()` serves the router for `settings.LLM_ROUTING_PATH` and follows edits to that file
and bumps of the cluster-wide config version like every hot-reloaded file (system.kernel.reload:
at most one check a second); `router_reload()` re-reads it at once and raises on errors.
"""

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings

from agents.runtime.attempts import (
    all_candidates_failed,
    failed_attempt,
    priced,
    succeeded_attempt,
)
from agents.runtime.breaker import CircuitBreakers
from agents.runtime.circuits import circuit_published
from agents.runtime.config import RoutingConfig, load_routing_config
from agents.runtime.providers import Provider, provider_build
from agents.runtime.tokens import estimate_prompt_tokens
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
from system.kernel.reload import HotReloaded

__all__ = ["Router", "RouterResult", "get_router", "router_reload"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RouterResult:
    completion: Completion
    attempts: list[Attempt]  # in call order; the last one is the success


@dataclass
class _Call:
    """One routed call so far: every attempt made, and the providers skipped because their
    circuit was open."""

    model: str
    attempts: list[Attempt] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def exhausted(self, *, why: str = "") -> AllCandidatesFailed:
        return all_candidates_failed(self.model, self.attempts, self.skipped, why=why)


class Router:
    def __init__(
        self, config: RoutingConfig, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """`clock` drives the circuit breakers' cooldowns (tests pass a fake one)."""
        self.config = config
        self.clock = clock
        # Built on first use: building an SDK-backed provider imports its SDK (seconds for
        # `anthropic`), which a process whose calls all end at the builtin never needs.
        self._providers: dict[str, Provider] = {}
        self._providers_lock = threading.Lock()
        self._breakers = CircuitBreakers(
            failures=config.breaker_failures,
            cooldown_seconds=config.breaker_cooldown_seconds,
            clock=clock,
            on_change=circuit_published,  # shown on the admin dashboard, across processes
        )

    def _provider(self, name: str) -> Provider:
        provider = self._providers.get(name)
        if provider is None:
            with self._providers_lock:
                provider = self._providers.get(name)
                if provider is None:
                    provider = provider_build(spec=self.config.providers[name])
                    self._providers[name] = provider
        return provider

    def preload(self) -> None:
        """Build the providers configured now (importing their SDKs), so that the first call
        does not pay for it: a Celery worker calls this before forking its pool."""
        for name, spec in self.config.providers.items():
            if spec.is_configured():
                self._provider(name)

    def aliases(self) -> list[str]:
        return sorted(self.config.models)

    def resolve(self, model: str) -> list[Candidate]:
        """The alias's candidates whose provider is configured now (keys are read at call time).

        Open circuits are not filtered out here: that is a routing decision made per call.
        """
        if model not in self.config.models:
            raise UnknownModel(model, self.aliases())
        return [
            candidate
            for candidate in self.config.models[model]
            if self.config.providers[candidate.provider].is_configured()
        ]

    def estimate_cost(self, messages: list[ChatMessage], config: ModelConfig) -> Decimal:
        """The most this call may cost: the priciest configured candidate of the alias (any
        may end up answering) at the prompt's estimated tokens plus `max_tokens` out. What a
        budget reserves before the call. Raises UnknownModel for an unknown alias."""
        prompt_tokens = estimate_prompt_tokens(messages)
        return max(
            (
                candidate.cost(prompt_tokens=prompt_tokens, completion_tokens=config.max_tokens)
                for candidate in self.resolve(config.model)
            ),
            default=Decimal(0),
        )

    def _candidates(self, model: str) -> list[Candidate]:
        candidates = self.resolve(model)
        if not candidates:
            missing = sorted(
                {
                    f"{c.provider} ({', '.join(self.config.providers[c.provider].missing_env())})"
                    for c in self.config.models[model]
                }
            )
            raise AllCandidatesFailed(
                f"no configured provider for model {model!r}; unset environment variables: "
                f"{'; '.join(missing)}",
                attempts=[],
            )
        return candidates

    def _admitted(self, call: _Call) -> Iterator[tuple[Candidate, Provider]]:
        """The alias's candidates in order, with their providers, but for those whose circuit
        is open (noted in `call.skipped`)."""
        for candidate in self._candidates(call.model):
            provider = self._provider(candidate.provider)  # before a trial may be claimed
            if not self._breakers.allow(candidate.provider):
                call.skipped.append(candidate.provider)
                continue
            yield candidate, provider

    def _timeout(self, candidate: Candidate) -> float:
        return self.config.providers[candidate.provider].timeout_seconds

    def _failed(
        self,
        call: _Call,
        error: ProviderError,
        *,
        candidate: Candidate,
        started: float,
        yielded: bool = False,
    ) -> None:
        """Record the failure; return if the next candidate may be tried, else raise."""
        call.attempts.append(failed_attempt(candidate, error, started))
        if error.retryable:
            self._breakers.record_failure(candidate.provider)
        else:
            self._breakers.release(candidate.provider)
        falling_back = error.retryable and not yielded
        logger.warning(
            "llm call to %s/%s failed (%s)%s",
            candidate.provider,
            candidate.model,
            error.code,
            ", trying the next candidate" if falling_back else "",
        )
        if falling_back:
            return
        if yielded:
            why = "the stream broke after text was sent, so no fallback was tried"
        else:
            why = "the error is not retryable, so no fallback was tried"
        raise call.exhausted(why=why) from error

    def _succeeded(
        self, call: _Call, completion: Completion, *, candidate: Candidate, started: float
    ) -> RouterResult:
        completion = priced(candidate, completion, started)
        self._breakers.record_success(candidate.provider)
        call.attempts.append(succeeded_attempt(completion))
        return RouterResult(completion=completion, attempts=call.attempts)

    def complete(self, messages: list[ChatMessage], config: ModelConfig) -> RouterResult:
        """Raises UnknownModel for an unknown alias, AllCandidatesFailed when nothing answered."""
        call = _Call(config.model)
        for candidate, provider in self._admitted(call):
            started = time.perf_counter()
            try:
                completion = provider.complete(
                    messages, config, model=candidate.model, timeout=self._timeout(candidate)
                )
            except ProviderError as error:
                self._failed(call, error, candidate=candidate, started=started)
                continue
            except BaseException:
                self._breakers.release(candidate.provider)  # a bug, not the provider's health
                raise
            return self._succeeded(call, completion, candidate=candidate, started=started)
        raise call.exhausted()

    def stream(
        self, messages: list[ChatMessage], config: ModelConfig
    ) -> Iterator[str | RouterResult]:
        """Yields text deltas, then one RouterResult.

        Falls back only while nothing has been yielded: once the caller has shown text to a
        user, switching to another model would splice two answers together. A failure after
        the first delta therefore raises AllCandidatesFailed (with that failed attempt).
        Raises UnknownModel before yielding anything for an unknown alias.
        """
        call = _Call(config.model)
        for candidate, provider in self._admitted(call):
            started = time.perf_counter()
            yielded = False
            completion: Completion | None = None
            items = provider.stream(
                messages, config, model=candidate.model, timeout=self._timeout(candidate)
            )
            try:
                # closing(): ends the provider's HTTP response when we stop early, either at
                # the Completion or because our own caller stopped reading.
                with closing(items):
                    for item in items:
                        if isinstance(item, Completion):
                            completion = item
                            break
                        yielded = True
                        yield item
                if completion is None:
                    raise ProviderError("empty_response", f"{candidate.provider} ended the stream")
            except ProviderError as error:
                self._failed(call, error, candidate=candidate, started=started, yielded=yielded)
                continue
            except BaseException:
                # Includes GeneratorExit when the caller stops reading early.
                self._breakers.release(candidate.provider)
                raise
            yield self._succeeded(call, completion, candidate=candidate, started=started)
            return
        raise call.exhausted()

    def health(self) -> list[dict]:
        """One entry per provider, for the system status API. Holds no URLs and no keys."""
        report = []
        for name, spec in self.config.providers.items():
            models = sorted(
                {
                    c.model
                    for cands in self.config.models.values()
                    for c in cands
                    if c.provider == name
                }
            )
            healthy, failures = self._breakers.snapshot(name)
            report.append(
                {
                    "name": name,
                    "kind": spec.kind,
                    "models": models,
                    "configured": spec.is_configured(),
                    "healthy": healthy,
                    "consecutive_failures": failures,
                }
            )
        return report


_holder: HotReloaded[Router] = HotReloaded(
    what="LLM routing",
    path=lambda: settings.LLM_ROUTING_PATH,
    # The breakers read the holder's clock at each use: router_reload(clock=...) sets it.
    parse=lambda path: Router(load_routing_config(path), clock=lambda: _holder.clock()),
    errors=(RoutingConfigError,),
    logger=logger,
)


def get_router() -> Router:
    """The router for settings.LLM_ROUTING_PATH, re-read when the file changes.

    An invalid edit is logged and the last good router kept. Note that re-reading starts new
    circuit breakers: a provider's failure count does not survive an edit of the file.
    """
    return _holder.current()


def router_reload(*, clock: Callable[[], float] = time.monotonic) -> Router:
    """Re-read the routing file now. Raises RoutingConfigError (the old router stays).

    `clock` drives the new router's circuit breakers and the once-a-second file check, until
    settings.LLM_ROUTING_PATH changes; tests pass a fake clock to step through cooldowns.
    """
    return _holder.load(clock=clock)

"""Per-provider circuit breakers, in memory and per process.

A provider that keeps failing with retryable errors (timeouts, 429, 5xx, refused connections)
is skipped for a cooldown, so agents do not wait out a dead provider's timeout on every call.
After the cooldown exactly one call is let through (half-open): its success closes the circuit,
its failure opens it for another cooldown. Errors that say nothing about the provider's health
(a bad request, a rejected key) neither open nor close a circuit.
"""

import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _State:
    consecutive_failures: int = 0
    opened_at: float | None = None
    trial_in_flight: bool = False


class CircuitBreakers:
    def __init__(self, *, failures: int, cooldown_seconds: float, clock: Callable[[], float]):
        self._failures = failures
        self._cooldown = cooldown_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._states: dict[str, _State] = {}

    def _state(self, provider: str) -> _State:
        return self._states.setdefault(provider, _State())

    def allow(self, provider: str) -> bool:
        """May a call to `provider` be made now? True for a half-open trial claims that trial, so
        the caller must report its outcome (record_success/record_failure/release)."""
        with self._lock:
            state = self._state(provider)
            if state.opened_at is None:
                return True
            if state.trial_in_flight or self._clock() - state.opened_at < self._cooldown:
                return False
            state.trial_in_flight = True
            return True

    def record_success(self, provider: str) -> None:
        with self._lock:
            self._states[provider] = _State()

    def record_failure(self, provider: str) -> None:
        with self._lock:
            state = self._state(provider)
            state.consecutive_failures += 1
            if state.trial_in_flight or state.consecutive_failures >= self._failures:
                state.opened_at = self._clock()
            state.trial_in_flight = False

    def release(self, provider: str) -> None:
        """The call ended without telling anything about the provider's health."""
        with self._lock:
            self._state(provider).trial_in_flight = False

    def snapshot(self, provider: str) -> tuple[bool, int]:
        """(healthy, consecutive_failures); unhealthy from opening until a trial succeeds."""
        with self._lock:
            state = self._state(provider)
            return state.opened_at is None, state.consecutive_failures

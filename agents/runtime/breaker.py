"""Per-provider circuit breakers, in memory and per process.

A provider that keeps failing with retryable errors (timeouts, 429, 5xx, refused connections)
is skipped for a cooldown, so agents do not wait out a dead provider's timeout on every call.
After the cooldown exactly one call is let through (half-open): its success closes the circuit,
its failure opens it for another cooldown. Errors that say nothing about the provider's health
(a bad request, a rejected key) neither open nor close a circuit.

`on_change(provider, state, consecutive_failures)` (optional) is called outside the lock after
every change of a provider's state ("closed", "open", "half_open") or failure count, never on
a success that changes nothing: the hot path stays free. agents.runtime.circuits publishes
these to Redis for the admin dashboard.
"""

import threading
from collections.abc import Callable
from dataclasses import dataclass

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
ChangeHook = Callable[[str, str, int], None]


@dataclass
class _State:
    consecutive_failures: int = 0
    opened_at: float | None = None
    trial_in_flight: bool = False

    @property
    def name(self) -> str:
        if self.opened_at is None:
            return CLOSED
        return HALF_OPEN if self.trial_in_flight else OPEN


class CircuitBreakers:
    def __init__(
        self,
        *,
        failures: int,
        cooldown_seconds: float,
        clock: Callable[[], float],
        on_change: ChangeHook | None = None,
    ):
        self._failures = failures
        self._on_change = on_change
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
            failures = state.consecutive_failures
        self._changed(provider, HALF_OPEN, failures)
        return True

    def record_success(self, provider: str) -> None:
        with self._lock:
            before = self._states.get(provider)
            self._states[provider] = _State()
        if before is not None and (before.opened_at is not None or before.consecutive_failures):
            self._changed(provider, CLOSED, 0)

    def record_failure(self, provider: str) -> None:
        with self._lock:
            state = self._state(provider)
            state.consecutive_failures += 1
            if state.trial_in_flight or state.consecutive_failures >= self._failures:
                state.opened_at = self._clock()
            state.trial_in_flight = False
            name, failures = state.name, state.consecutive_failures
        self._changed(provider, name, failures)

    def release(self, provider: str) -> None:
        """The call ended without telling anything about the provider's health."""
        with self._lock:
            state = self._state(provider)
            was_trial = state.trial_in_flight
            state.trial_in_flight = False
            name, failures = state.name, state.consecutive_failures
        if was_trial:
            self._changed(provider, name, failures)

    def _changed(self, provider: str, state: str, failures: int) -> None:
        if self._on_change is not None:
            self._on_change(provider, state, failures)

    def snapshot(self, provider: str) -> tuple[bool, int]:
        """(healthy, consecutive_failures); unhealthy from opening until a trial succeeds."""
        with self._lock:
            state = self._state(provider)
            return state.opened_at is None, state.consecutive_failures

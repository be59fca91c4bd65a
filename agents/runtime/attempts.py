"""Turning provider calls into ledger records: Attempts, prices and the final error."""

import time
from dataclasses import replace
from decimal import Decimal

from agents.runtime.types import AllCandidatesFailed, Attempt, Candidate, Completion, ProviderError


def failed_attempt(candidate: Candidate, error: ProviderError, started: float) -> Attempt:
    return Attempt(
        provider=candidate.provider,
        model=candidate.model,
        success=False,
        error_code=error.code,
        prompt_tokens=0,
        completion_tokens=0,
        cost_usd=Decimal(0),
        latency_ms=(time.perf_counter() - started) * 1000,
    )


def priced(candidate: Candidate, completion: Completion, started: float) -> Completion:
    return replace(
        completion,
        cost_usd=candidate.cost(
            prompt_tokens=completion.prompt_tokens, completion_tokens=completion.completion_tokens
        ),
        latency_ms=(time.perf_counter() - started) * 1000,
    )


def succeeded_attempt(completion: Completion) -> Attempt:
    return Attempt(
        provider=completion.provider,
        model=completion.model,
        success=True,
        error_code="",
        prompt_tokens=completion.prompt_tokens,
        completion_tokens=completion.completion_tokens,
        cost_usd=completion.cost_usd,
        latency_ms=completion.latency_ms,
    )


def all_candidates_failed(
    model: str, attempts: list[Attempt], skipped: list[str], *, why: str = ""
) -> AllCandidatesFailed:
    """The error for a call that got no completion; its message holds codes, never texts."""
    summary = ", ".join(f"{a.provider}/{a.model}: {a.error_code}" for a in attempts)
    message = f"no candidate for model {model!r} produced a completion"
    if summary:
        message += f" ({summary})"
    if why:
        message += f"; {why}"
    if skipped:
        message += f"; circuit open, skipped: {', '.join(skipped)}"
    return AllCandidatesFailed(message, attempts=attempts)

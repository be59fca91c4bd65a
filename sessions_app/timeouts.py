"""The session timeout policy (ElizaOS's model), shared by /api/v1/sessions and the
ElizaOS-compatible routes.

    expires_at = created_at + max_duration        if (now - created_at) + timeout > max_duration
               = (auto_renew ? last_activity : created_at) + timeout   otherwise

A session is expired when expires_at <= now; near expiration when 0 < remaining <= warning.
A renewal (heartbeat with autoRenew, or explicit) needs room for a whole timeout before the
max duration; an explicit one without room is refused (422 / SESSION_RENEWAL_FAILED).
"""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings

from system.kernel.exceptions import DomainError

# Request field → attribute, in the camelCase both APIs use for timeoutConfig.
FIELDS = {
    "timeoutMinutes": "timeout_minutes",
    "autoRenew": "auto_renew",
    "maxDurationMinutes": "max_duration_minutes",
    "warningThresholdMinutes": "warning_threshold_minutes",
}


@dataclass(frozen=True)
class TimeoutConfig:
    timeout_minutes: int
    auto_renew: bool
    max_duration_minutes: int
    warning_threshold_minutes: int

    def as_api(self) -> dict[str, Any]:
        return {api: getattr(self, attr) for api, attr in FIELDS.items()}


class InvalidTimeoutConfig(DomainError):
    code = "invalid_timeout_config"
    http_status = 400
    message = "The session timeout configuration is invalid."


def limits() -> tuple[int, int]:
    return settings.SESSION_MIN_TIMEOUT_MINUTES, settings.SESSION_MAX_TIMEOUT_MINUTES


def defaults() -> TimeoutConfig:
    return TimeoutConfig(
        timeout_minutes=settings.SESSION_DEFAULT_TIMEOUT_MINUTES,
        auto_renew=True,
        max_duration_minutes=settings.SESSION_MAX_DURATION_MINUTES,
        warning_threshold_minutes=settings.SESSION_WARNING_THRESHOLD_MINUTES,
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _type_errors(raw: Any) -> dict[str, list[str]]:
    if not isinstance(raw, dict):
        return {"timeoutConfig": ["Must be an object."]}
    errors: dict[str, list[str]] = {}
    for key, value in raw.items():
        if key not in FIELDS:
            errors[key] = [f"Unknown field; allowed: {', '.join(FIELDS)}."]
        elif key == "autoRenew" and not isinstance(value, bool):
            errors[key] = ["Must be true or false."]
        elif key != "autoRenew" and not _is_int(value):
            errors[key] = ["Must be a whole number of minutes."]
    return errors


def clamp(raw: Any) -> TimeoutConfig:
    """ElizaOS's create: merge over the defaults and clamp into range (types still checked)."""
    raw = raw if raw is not None else {}
    errors = _type_errors(raw)
    if errors:
        raise InvalidTimeoutConfig(details=errors)
    low, high = limits()
    merged = replace(defaults(), **{FIELDS[k]: v for k, v in raw.items()})
    timeout = min(max(merged.timeout_minutes, low), high)
    return TimeoutConfig(
        timeout_minutes=timeout,
        auto_renew=merged.auto_renew,
        max_duration_minutes=max(timeout, min(2 * high, merged.max_duration_minutes)),
        warning_threshold_minutes=max(1, merged.warning_threshold_minutes),
    )


def validate(raw: Any, *, base: TimeoutConfig) -> TimeoutConfig:
    """Strict: merge `raw` over `base`; any value out of range is a 400 naming the field and
    its allowed range (the spec's create and both APIs' PATCH)."""
    raw = raw if raw is not None else {}
    errors = _type_errors(raw)
    if errors:
        raise InvalidTimeoutConfig(details=errors)
    low, high = limits()
    merged = replace(base, **{FIELDS[k]: v for k, v in raw.items()})
    ranges = {
        "timeoutMinutes": (merged.timeout_minutes, low, high),
        "maxDurationMinutes": (merged.max_duration_minutes, merged.timeout_minutes, 2 * high),
        "warningThresholdMinutes": (merged.warning_threshold_minutes, 1, merged.timeout_minutes),
    }
    for field, (value, minimum, maximum) in ranges.items():
        if not minimum <= value <= maximum:
            errors[field] = [f"Must be from {minimum} to {maximum} minutes."]
    if errors:
        allowed = {f: [r[1], r[2]] for f, r in ranges.items() if f in errors}
        raise InvalidTimeoutConfig(details={**errors, "allowed": allowed})
    return merged


def expires_at(
    *, created_at: datetime, last_activity: datetime, config: TimeoutConfig, now: datetime
) -> datetime:
    timeout = timedelta(minutes=config.timeout_minutes)
    max_duration = timedelta(minutes=config.max_duration_minutes)
    if (now - created_at) + timeout > max_duration:
        return created_at + max_duration
    base = last_activity if config.auto_renew else created_at
    return base + timeout


def can_renew(*, created_at: datetime, config: TimeoutConfig, now: datetime) -> bool:
    """A renewal must be able to grant a whole timeout inside the max duration; past that
    point expiry is pinned to created_at + max_duration and renewing would change nothing."""
    timeout = timedelta(minutes=config.timeout_minutes)
    return (now - created_at) + timeout <= timedelta(minutes=config.max_duration_minutes)


def time_remaining_ms(*, expires: datetime, now: datetime) -> int:
    return max(0, int((expires - now).total_seconds() * 1000))


def is_near_expiration(*, expires: datetime, config: TimeoutConfig, now: datetime) -> bool:
    remaining = time_remaining_ms(expires=expires, now=now)
    return 0 < remaining <= config.warning_threshold_minutes * 60_000

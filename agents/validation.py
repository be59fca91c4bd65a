"""Validation of agent fields, shared by the REST API, the admin and the services.

Every problem is collected, per field, into one 400 `invalid_agent_config` error.
"""

import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from agents.exceptions import InvalidAgentConfig
from agents.roster import AGENT_TYPES
from agents.runtime import UnknownModel, get_router

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
MAX_SKILLS = 50
MAX_SKILL_LENGTH = 64
MAX_SYSTEM_PROMPT = 20_000

_RANGES: dict[str, tuple[float, float]] = {
    "temperature": (0.0, 2.0),
    "top_p": (0.0, 1.0),
    "frequency_penalty": (-2.0, 2.0),
    "presence_penalty": (-2.0, 2.0),
}
MAX_TOKENS_RANGE = (1, 200_000)
CONFIG_FIELDS = ("model", *_RANGES, "max_tokens", "daily_budget_usd")


class _Errors:
    def __init__(self) -> None:
        self.details: dict[str, list[str]] = {}

    def add(self, field: str, message: str) -> None:
        self.details.setdefault(field, []).append(message)

    def raise_if_any(self) -> None:
        if self.details:
            raise InvalidAgentConfig(details=self.details)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_config(config: Any, base: dict[str, Any], errors: _Errors) -> dict[str, Any]:
    if not isinstance(config, dict):
        errors.add("config", "Must be an object.")
        return base
    merged = {**base}
    for key in sorted(set(config) - set(CONFIG_FIELDS)):
        errors.add(f"config.{key}", f"Unknown field; allowed: {', '.join(CONFIG_FIELDS)}.")
    for field, (low, high) in _RANGES.items():
        if field in config:
            value = config[field]
            if not _is_number(value) or not low <= value <= high:
                errors.add(f"config.{field}", f"Must be a number from {low:g} to {high:g}.")
            else:
                merged[field] = float(value)
    if "max_tokens" in config:
        value = config["max_tokens"]
        low, high = MAX_TOKENS_RANGE
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            errors.add("config.max_tokens", f"Must be an integer from {low} to {high}.")
        else:
            merged["max_tokens"] = value
    if "model" in config:
        merged["model"] = config["model"]
    if "daily_budget_usd" in config:
        merged["daily_budget_usd"] = _check_budget(config["daily_budget_usd"], errors)
    _check_model(merged.get("model"), errors)
    return merged


def _check_budget(value: Any, errors: _Errors) -> str | None:
    if value is None:
        return None
    try:
        amount = Decimal(str(value)) if _is_number(value) or isinstance(value, str) else None
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite() or amount < 0:
        errors.add("config.daily_budget_usd", "Must be a non-negative amount in USD, or null.")
        return None
    return str(amount)


def _check_model(model: Any, errors: _Errors) -> None:
    if not isinstance(model, str) or not model.strip():
        errors.add("config.model", "Must be a non-empty string.")
        return
    router = get_router()
    try:
        candidates = router.resolve(model)
    except UnknownModel as exc:
        errors.add(
            "config.model", f"Unknown model {model!r}; configured: {', '.join(exc.known_aliases)}."
        )
        return
    if not candidates:
        errors.add("config.model", f"No configured provider serves {model!r} (missing API key?).")


def _check_skills(skills: Any, errors: _Errors) -> list[str]:
    if not isinstance(skills, list):
        errors.add("skills", "Must be a list of strings.")
        return []
    if len(skills) > MAX_SKILLS:
        errors.add("skills", f"At most {MAX_SKILLS} skills.")
    for skill in skills:
        if not isinstance(skill, str) or not 1 <= len(skill.strip()) <= MAX_SKILL_LENGTH:
            errors.add("skills", f"Each skill is a string of 1 to {MAX_SKILL_LENGTH} characters.")
            break
    return [s.strip() for s in skills if isinstance(s, str)]


def validate_agent_fields(data: dict[str, Any], *, base_config: dict[str, Any]) -> dict[str, Any]:
    """Validate the fields present in `data` (name, type, config, skills, system_prompt);
    `config` is merged over `base_config`. Returns the cleaned fields."""
    errors = _Errors()
    cleaned: dict[str, Any] = {}
    if "name" in data:
        name = data["name"]
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            errors.add("name", "1 to 100 letters, digits, '-' or '_'.")
        cleaned["name"] = name
    if "type" in data:
        if data["type"] not in AGENT_TYPES:
            errors.add("type", f"Unknown agent type; choose from: {', '.join(AGENT_TYPES)}.")
        cleaned["type"] = data["type"]
    if "config" in data:
        cleaned["config"] = _check_config(data["config"], base_config, errors)
    if "skills" in data:
        cleaned["skills"] = _check_skills(data["skills"], errors)
    if "system_prompt" in data:
        prompt = data["system_prompt"]
        if not isinstance(prompt, str) or len(prompt) > MAX_SYSTEM_PROMPT:
            errors.add("system_prompt", f"A string of at most {MAX_SYSTEM_PROMPT} characters.")
        cleaned["system_prompt"] = prompt
    errors.raise_if_any()
    return cleaned

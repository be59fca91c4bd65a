"""Reading and validating `config/llm_routing.yaml` (see the comments in that file).

Validation is strict (unknown keys are errors) because a typo such as `api_key_emv` would
otherwise silently turn a provider off. Messages name the file and the entry, but never echo a
value that could be a secret: a key pasted where an environment variable name belongs must not
end up in a log.
"""

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from agents.runtime.types import Candidate, RoutingConfigError

__all__ = ["ProviderSpec", "RoutingConfig", "load_routing_config", "routing_config_parse"]

PROVIDER_KINDS = ("openai", "anthropic", "builtin")
DEFAULT_BASE_URLS = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PROVIDER_KEYS = {"kind", "base_url", "base_url_env", "api_key_env", "timeout_seconds"}
_CANDIDATE_KEYS = {"provider", "model", "cost_per_1k_input", "cost_per_1k_output"}


@dataclass(frozen=True)
class ProviderSpec:
    """A provider entry. Secrets are not stored here: they are read from the environment at call
    time, so exporting a key takes effect without reloading the file."""

    name: str
    kind: str
    base_url: str | None = None
    base_url_env: str | None = None
    api_key_env: str | None = None
    timeout_seconds: float = 30.0

    def missing_env(self) -> list[str]:
        """Names of the environment variables this provider needs but that are unset or empty."""
        needed = [name for name in (self.api_key_env, self.base_url_env) if name]
        return [name for name in needed if not os.environ.get(name)]

    def is_configured(self) -> bool:
        return not self.missing_env()

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) if self.api_key_env else None

    def resolved_base_url(self) -> str | None:
        if self.base_url_env:
            return os.environ.get(self.base_url_env) or None
        return self.base_url or DEFAULT_BASE_URLS.get(self.kind)


@dataclass(frozen=True)
class RoutingConfig:
    providers: dict[str, ProviderSpec]
    models: dict[str, list[Candidate]]
    breaker_failures: int = 3
    breaker_cooldown_seconds: float = 30.0
    source: str = field(default="<memory>", compare=False)


def _mapping(value: Any, where: str, source: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping) or not value:
        raise RoutingConfigError(f"{source}: {where} must be a non-empty mapping")
    return value


def _no_unknown_keys(entry: Mapping[str, Any], allowed: set[str], where: str, source: str) -> None:
    unknown = sorted(str(key) for key in entry if key not in allowed)
    if not unknown:
        return
    hint = ""
    if any(key.startswith("api_key") for key in unknown):
        hint = " (put the key in an environment variable and name it with api_key_env)"
    allowed_keys = ", ".join(sorted(allowed))
    raise RoutingConfigError(
        f"{source}: {where}: unknown key {unknown[0]!r}{hint}; allowed: {allowed_keys}"
    )


def _section(value: Any, allowed: set[str], where: str, source: str) -> Mapping[str, Any]:
    """A non-empty mapping that holds only `allowed` keys."""
    section = _mapping(value, where, source)
    _no_unknown_keys(section, allowed, where, source)
    return section


def _number(value: Any, where: str, source: str, *, minimum: float, strict: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RoutingConfigError(f"{source}: {where} must be a number")
    if value < minimum or (strict and value == minimum):
        relation = "greater than" if strict else "at least"
        raise RoutingConfigError(f"{source}: {where} must be {relation} {minimum:g}")
    return float(value)


def _price(value: Any, where: str, source: str) -> Decimal:
    # str() first so that a YAML float such as 0.0025 becomes Decimal("0.0025"), not its binary
    # approximation: these prices are multiplied into the usage ledger.
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise RoutingConfigError(f"{source}: {where} must be a number (USD per 1000 tokens)")
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        raise RoutingConfigError(
            f"{source}: {where} must be a number (USD per 1000 tokens)"
        ) from None
    if not price.is_finite() or price < 0:
        raise RoutingConfigError(f"{source}: {where} must be zero or more")
    return price


def _env_name(value: Any, where: str, source: str) -> str:
    if not isinstance(value, str) or not _ENV_NAME.match(value):
        # Deliberately without the value: it may be a key pasted in the wrong place.
        raise RoutingConfigError(
            f"{source}: {where} must name an environment variable (letters, digits, underscores)"
        )
    return value


def _provider(name: str, entry: Any, source: str) -> ProviderSpec:
    where = f"providers.{name}"
    entry = _section(entry, _PROVIDER_KEYS, where, source)
    kind = entry.get("kind")
    if kind not in PROVIDER_KINDS:
        raise RoutingConfigError(
            f"{source}: {where}.kind must be one of {', '.join(PROVIDER_KINDS)} (got {kind!r})"
        )
    if kind == "builtin" and set(entry) - {"kind", "timeout_seconds"}:
        raise RoutingConfigError(f"{source}: {where}: a builtin provider takes only 'kind'")
    if "base_url" in entry and "base_url_env" in entry:
        raise RoutingConfigError(f"{source}: {where}: give base_url or base_url_env, not both")
    base_url = entry.get("base_url")
    if base_url is not None and (
        not isinstance(base_url, str) or not base_url.startswith(("http://", "https://"))
    ):
        raise RoutingConfigError(f"{source}: {where}.base_url must be an http(s) URL")
    return ProviderSpec(
        name=name,
        kind=kind,
        base_url=base_url,
        base_url_env=(
            _env_name(entry["base_url_env"], f"{where}.base_url_env", source)
            if "base_url_env" in entry
            else None
        ),
        api_key_env=(
            _env_name(entry["api_key_env"], f"{where}.api_key_env", source)
            if "api_key_env" in entry
            else None
        ),
        timeout_seconds=_number(
            entry.get("timeout_seconds", 30),
            f"{where}.timeout_seconds",
            source,
            minimum=0,
            strict=True,
        ),
    )


def _candidate(
    entry: Any, where: str, providers: dict[str, ProviderSpec], source: str
) -> Candidate:
    entry = _section(entry, _CANDIDATE_KEYS, where, source)
    provider = entry.get("provider")
    if provider not in providers:
        raise RoutingConfigError(
            f"{source}: {where}.provider {provider!r} is not declared under providers"
        )
    model = entry.get("model")
    if not isinstance(model, str) or not model.strip():
        raise RoutingConfigError(f"{source}: {where}.model must be a non-empty string")
    free = providers[provider].kind == "builtin"
    for key in ("cost_per_1k_input", "cost_per_1k_output"):
        # A forgotten price would make every budget check pass; only the builtin is free by default.
        if key not in entry and not free:
            raise RoutingConfigError(f"{source}: {where}.{key} is missing (use 0 for free models)")
    return Candidate(
        provider=provider,
        model=model,
        cost_per_1k_input=_price(
            entry.get("cost_per_1k_input", 0), f"{where}.cost_per_1k_input", source
        ),
        cost_per_1k_output=_price(
            entry.get("cost_per_1k_output", 0), f"{where}.cost_per_1k_output", source
        ),
    )


def routing_config_parse(data: Any, *, source: str = "<memory>") -> RoutingConfig:
    """Validate already-decoded YAML. Raises RoutingConfigError naming what is wrong."""
    root = _section(data, {"providers", "circuit_breaker", "models"}, "the file", source)
    providers = {
        str(name): _provider(str(name), entry, source)
        for name, entry in _mapping(root.get("providers"), "providers", source).items()
    }
    breaker = root.get("circuit_breaker") or {}
    if not isinstance(breaker, Mapping):
        raise RoutingConfigError(f"{source}: circuit_breaker must be a mapping")
    _no_unknown_keys(breaker, {"failures", "cooldown_seconds"}, "circuit_breaker", source)
    failures = breaker.get("failures", 3)
    if isinstance(failures, bool) or not isinstance(failures, int) or failures < 1:
        raise RoutingConfigError(f"{source}: circuit_breaker.failures must be a positive integer")
    cooldown = _number(
        breaker.get("cooldown_seconds", 30),
        "circuit_breaker.cooldown_seconds",
        source,
        minimum=0,
        strict=False,
    )
    models: dict[str, list[Candidate]] = {}
    for alias, entries in _mapping(root.get("models"), "models", source).items():
        where = f"models.{alias}"
        if not isinstance(entries, list) or not entries:
            raise RoutingConfigError(f"{source}: {where} must be a non-empty list of candidates")
        models[str(alias)] = [
            _candidate(entry, f"{where}[{index}]", providers, source)
            for index, entry in enumerate(entries)
        ]
    return RoutingConfig(
        providers=providers,
        models=models,
        breaker_failures=failures,
        breaker_cooldown_seconds=cooldown,
        source=source,
    )


def load_routing_config(path: Path) -> RoutingConfig:
    """Read and validate the routing file. Raises RoutingConfigError (never OSError/YAMLError)."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise RoutingConfigError(f"{path}: cannot read the file ({exc.strerror})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        # Without the parser's snippet of the line: that line may hold a pasted key.
        raise RoutingConfigError(f"{path}{line}: not valid YAML ({problem})") from None
    return routing_config_parse(data, source=str(path))

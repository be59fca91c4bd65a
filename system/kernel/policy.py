"""The policy engine: `config/routing_rules.yaml` maps named actions to the roles allowed.

The file is validated when Django starts (an error names the file and line) and re-read when it
changes on disk, at most once a second per process, so an edit takes effect without a restart;
an invalid edit is logged and the last good policy stays in force. `policy_reload()` re-reads it
at once and raises on errors (for the `reload_config` system task and the admin).

The same once-a-second check compares the cluster-wide config version in Redis
(`config_version_bump()`, called by the `reload_config` system task): when it changed, every
process re-reads its files even where their modification time did not change.
"""

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import redis
import yaml
from django.conf import settings

from system.kernel.redis_client import get_redis
from system.kernel.roles import ROLES

logger = logging.getLogger(__name__)

PUBLIC = "public"
_CHECK_INTERVAL = 1.0
CONFIG_VERSION_KEY = "371os:config-version"


def config_version() -> str | None:
    """The cluster-wide configuration version ("" before the first bump), or None when Redis
    cannot be reached (then only file modification times are followed)."""
    try:
        value = get_redis().get(CONFIG_VERSION_KEY)
    except redis.RedisError:
        return None
    return value.decode() if value is not None else ""


def config_version_bump() -> str:
    """Make every process re-read its configuration files within about a second of its next
    use of them. Raises redis.RedisError when Redis cannot be reached."""
    version = str(time.time_ns())
    get_redis().set(CONFIG_VERSION_KEY, version)
    return version


class PolicyError(ValueError):
    """The rules file is malformed; the message names the file and line."""


@dataclass(frozen=True)
class Rule:
    public: bool
    roles: frozenset[str]


@dataclass(frozen=True)
class Policy:
    actions: dict[str, Rule]
    role_limits: dict[str, int]
    no_role_limit: int
    anonymous_limit: int
    action_limits: dict[str, int]

    def limit_for(self, roles: frozenset[str]) -> int:
        """Per-minute limit of a principal: that of its most generous role."""
        return max(
            (self.role_limits[r] for r in roles if r in self.role_limits),
            default=self.no_role_limit,
        )


def _fail(path: Path, node: yaml.Node, message: str) -> PolicyError:
    return PolicyError(f"{path}:{node.start_mark.line + 1}: {message}")


def _mapping(path: Path, node: yaml.Node, what: str) -> list[tuple[yaml.Node, yaml.Node]]:
    if not isinstance(node, yaml.MappingNode):
        raise _fail(path, node, f"{what} must be a mapping")
    return node.value


def _positive_int(path: Path, node: yaml.Node, what: str) -> int:
    if not isinstance(node, yaml.ScalarNode) or not node.value.isdigit() or int(node.value) < 1:
        raise _fail(path, node, f"{what} must be a positive integer")
    return int(node.value)


def _role_list(path: Path, node: yaml.Node, what: str) -> list[str]:
    if not isinstance(node, yaml.SequenceNode) or not node.value:
        raise _fail(path, node, f"{what} must be a non-empty list of roles or '{PUBLIC}'")
    roles = []
    for item in node.value:
        if not isinstance(item, yaml.ScalarNode) or item.value not in ROLES:
            raise _fail(path, item, f"unknown role {getattr(item, 'value', item)!r} in {what}")
        roles.append(item.value)
    return roles


def policy_parse(text: str, path: Path) -> Policy:
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"{mark.line + 1}" if mark else "?"
        raise PolicyError(
            f"{path}:{line}: not valid YAML ({getattr(exc, 'problem', exc)})"
        ) from exc
    if root is None:
        raise PolicyError(f"{path}:1: the file is empty")
    sections = {key.value: (key, value) for key, value in _mapping(path, root, "the file")}
    for name in ("roles", "rate_limits", "actions"):
        if name not in sections:
            raise PolicyError(f"{path}:1: missing section '{name}'")
    unknown = set(sections) - {"roles", "rate_limits", "actions"}
    if unknown:
        key, _ = sections[sorted(unknown)[0]]
        raise _fail(path, key, f"unknown section '{key.value}'")

    declared = _role_list(path, sections["roles"][1], "roles")
    if set(declared) != set(ROLES):
        raise _fail(path, sections["roles"][1], f"roles must be exactly {list(ROLES)}")

    limits = {k.value: v for k, v in _mapping(path, sections["rate_limits"][1], "rate_limits")}
    for name in ("per_role", "no_role", "anonymous"):
        if name not in limits:
            raise _fail(path, sections["rate_limits"][0], f"rate_limits.{name} is missing")
    role_limits = {}
    for key, value in _mapping(path, limits["per_role"], "rate_limits.per_role"):
        if key.value not in ROLES:
            raise _fail(path, key, f"unknown role {key.value!r} in rate_limits.per_role")
        role_limits[key.value] = _positive_int(path, value, f"rate_limits.per_role.{key.value}")

    actions: dict[str, Rule] = {}
    for key, value in _mapping(path, sections["actions"][1], "actions"):
        name = key.value
        if name in actions:
            raise _fail(path, key, f"action {name!r} is listed twice")
        if isinstance(value, yaml.ScalarNode) and value.value == PUBLIC:
            actions[name] = Rule(public=True, roles=frozenset())
        else:
            actions[name] = Rule(public=False, roles=frozenset(_role_list(path, value, name)))

    action_limits = {}
    if "per_action" in limits:
        for key, value in _mapping(path, limits["per_action"], "rate_limits.per_action"):
            if key.value not in actions:
                raise _fail(path, key, f"rate limit for unknown action {key.value!r}")
            action_limits[key.value] = _positive_int(path, value, f"limit of {key.value}")

    return Policy(
        actions=actions,
        role_limits=role_limits,
        no_role_limit=_positive_int(path, limits["no_role"], "rate_limits.no_role"),
        anonymous_limit=_positive_int(path, limits["anonymous"], "rate_limits.anonymous"),
        action_limits=action_limits,
    )


class _PolicyHolder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.policy: Policy | None = None
        self.path: Path | None = None
        self.mtime_ns = 0
        self.checked_at = 0.0
        self.version: str | None = None

    def load(self, path: Path, version: str | None = None) -> Policy:
        # The version is read before the file: a bump that lands while the file is being read
        # is seen at the next check and causes one more read, never a missed one.
        version = config_version() if version is None else version
        mtime_ns = os.stat(path).st_mtime_ns
        policy = policy_parse(path.read_text(), path)
        with self.lock:
            self.policy, self.path, self.mtime_ns = policy, path, mtime_ns
            self.version = version
            self.checked_at = time.monotonic()
        return policy

    def current(self) -> Policy:
        path = Path(settings.ROUTING_RULES_PATH)
        policy = self.policy
        if policy is None or path != self.path:
            return self.load(path)
        now = time.monotonic()
        if now - self.checked_at >= _CHECK_INTERVAL:
            self.checked_at = now
            try:
                version = config_version()
                if version is not None and version != self.version:
                    # Noted before loading: a bad file is then logged once per version.
                    self.version = version
                    return self.load(path, version)
                if os.stat(path).st_mtime_ns != self.mtime_ns:
                    return self.load(path)
            except (OSError, PolicyError) as exc:
                logger.error("keeping the previous access policy: %s", exc)
        return policy


_holder = _PolicyHolder()


def get_policy() -> Policy:
    return _holder.current()


def policy_reload() -> Policy:
    """Re-read the rules file now. Raises PolicyError (the old policy stays) if it is invalid."""
    return _holder.load(Path(settings.ROUTING_RULES_PATH))

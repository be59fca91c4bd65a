"""The policy engine: `config/routing_rules.yaml` maps named actions to the roles allowed.

The file is validated when Django starts (an error names the file and line) and followed like
every hot-reloaded file (system.kernel.reload): re-read when it changes on disk or the
cluster-wide config version is bumped, at most once a second per process, so an edit takes
effect without a restart; an invalid edit is logged and the last good policy stays in force.
`policy_reload()` re-reads it at once and raises on errors (for the `reload_config` system task
and the admin).
"""

import logging
from dataclasses import dataclass
from pathlib import Path

import yaml
from django.conf import settings

from system.kernel.reload import HotReloaded
from system.kernel.roles import ROLES

logger = logging.getLogger(__name__)

PUBLIC = "public"


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


_holder: HotReloaded[Policy] = HotReloaded(
    what="access policy",
    path=lambda: settings.ROUTING_RULES_PATH,
    parse=lambda path: policy_parse(path.read_text(), path),
    errors=(PolicyError,),
    logger=logger,
)


def get_policy() -> Policy:
    return _holder.current()


def policy_reload() -> Policy:
    """Re-read the rules file now. Raises PolicyError (the old policy stays) if it is invalid."""
    return _holder.load()

"""Who a channel member is: a (member_type, member_id) pair, never a bare id.

A local principal's ref: a user → ("user", username); a standalone API key → ("api_key",
"key:<prefix>", its service user's username); an agent → ("agent", its UUID). An external
participant (an ElizaOS session's `userId`) is ("external", id): it names someone in the
caller's system and grants nothing to a local account that happens to share the name. A bare
string a client sends is an agent (UUID or name) if one exists, else a user id.
"""

import uuid
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model

from agents.models import Agent
from messaging.exceptions import SenderNotAllowed
from messaging.models import ChannelMember
from system.kernel.exceptions import ValidationFailed
from system.kernel.principal import Principal, is_service_username

MAX_MEMBER_ID = 255
MAX_MEMBERS = 1000
_KINDS = tuple(ChannelMember.Type.values)


@dataclass(frozen=True)
class MemberRef:
    member_id: str
    member_type: str


def username_member_ref(username: str) -> MemberRef:
    """A local account's ref: a standalone key's service user is an `api_key` member."""
    kind = ChannelMember.Type.API_KEY if is_service_username(username) else ChannelMember.Type.USER
    return MemberRef(username, kind)


def principal_member_ref(principal: Principal) -> MemberRef:
    """How a principal of ours appears in channel memberships."""
    return username_member_ref(principal.username)


def agents_by_ref(refs: list[str]) -> dict[str, Agent]:
    """Agents named by UUID or by name, keyed by the reference used."""
    ids, names = set(), set()
    for ref in refs:
        try:
            ids.add(uuid.UUID(ref))
        except ValueError:
            names.add(ref)
    found: dict[str, Agent] = {}
    if not ids and not names:
        return found
    # One condition when the refs are all ids or all names (a message's one sender): the OR
    # of both costs more to compile than the lookup it makes.
    if not names:
        agents = Agent.objects.filter(agent_id__in=ids)
    elif not ids:
        agents = Agent.objects.filter(name__in=names)
    else:
        agents = Agent.objects.filter(agent_id__in=ids) | Agent.objects.filter(name__in=names)
    for agent in agents:
        found[str(agent.agent_id)] = found[agent.name] = agent
    return {ref: found[ref] for ref in refs if ref in found}


def _parse(item: Any, field: str) -> tuple[str, str | None]:
    if isinstance(item, dict):
        ref, kind = item.get("member_id"), item.get("member_type")
    elif isinstance(item, str) and ":" in item and item.split(":", 1)[0] in _KINDS:
        kind, ref = item.split(":", 1)
    else:
        ref, kind = item, None
    valid_ref = isinstance(ref, str) and 1 <= len(ref) <= MAX_MEMBER_ID
    if not valid_ref or kind not in (None, *_KINDS):
        raise ValidationFailed(
            details={
                field: [
                    "Each member is an agent id or name, a user id of 1 to "
                    f"{MAX_MEMBER_ID} characters, or {{member_id, member_type}} with "
                    f"member_type one of {', '.join(_KINDS)}."
                ]
            }
        )
    return ref, kind


def resolve_members(raw: Any, *, field: str = "members") -> list[MemberRef]:
    """Members as strings (an agent's UUID or name, else a user id), `<kind>:<id>`, or
    objects {member_id, member_type}. A `key:<prefix>` user id is that key's `api_key`
    member. An explicit agent that does not exist is a 400 naming it."""
    if not isinstance(raw, list):
        raise ValidationFailed(details={field: ["Must be a list."]})
    if len(raw) > MAX_MEMBERS:
        raise ValidationFailed(details={field: [f"At most {MAX_MEMBERS} members."]})
    wanted = [_parse(item, field) for item in raw]
    agents = agents_by_ref([ref for ref, kind in wanted if kind in (None, "agent")])
    unknown = [ref for ref, kind in wanted if kind == "agent" and ref not in agents]
    if unknown:
        raise ValidationFailed(
            f"Unknown agent: {', '.join(unknown)}.",
            details={field: [f"Unknown agent: {r}" for r in unknown]},
        )
    members: dict[tuple[str, str], MemberRef] = {}
    for ref, kind in wanted:
        agent = agents.get(ref) if kind in (None, "agent") else None
        if agent is not None:
            member = MemberRef(str(agent.agent_id), ChannelMember.Type.AGENT)
        elif kind in (None, ChannelMember.Type.USER):
            member = username_member_ref(ref)
        else:
            member = MemberRef(ref, kind)
        members.setdefault((member.member_type, member.member_id), member)
    return list(members.values())


def sender_check(*, principal: Principal, sender_id: str) -> None:
    """A non-admin caller's `sender_id` is an external participant id or its own name, never
    another local principal's (another user's username, another key's `key:<prefix>`):
    403 `sender_not_allowed`. Agents are checked apart (sending as one needs a role)."""
    if principal.is_admin or sender_id == principal.username:
        return
    if is_service_username(sender_id) or (
        get_user_model().objects.filter(username=sender_id).exists()
    ):
        raise SenderNotAllowed(details={"sender_id": sender_id})

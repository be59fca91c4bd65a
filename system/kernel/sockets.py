"""Telling open WebSockets, on every ws process, that what they may see has changed.

Channels' channel layer addresses consumers across processes by group. A connection joins the
groups of its principal (`principal_groups`) and the channel-access group; services call
these functions inside their transaction and the message goes out after commit:

- `sockets_recheck_principal`: an API key was revoked, a user deactivated or their roles
  changed. Every socket of that principal re-checks its credentials at once: closed with 4401
  when they no longer hold, its grants re-read otherwise.
- `sockets_channel_access_changed`: a channel's members (or type) changed. Every ws process
  forgets what it cached about that channel's visibility, so the next event of that channel
  is checked against the database.

Delivery is at most once: a message lost while Redis is away is made up for by the periodic
re-check (WS_AUTH_RECHECK_SECONDS), the same bound as before this existed.
"""

import logging
import uuid
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

CHANNEL_ACCESS_GROUP = "realtime.channel-access"
# Each ws process's open sockets (system.realtime.census writes, the ops dashboard reads): a
# Redis hash, field `<host>:<pid>`, JSON {connections, updated_at}, written every period.
WS_PROCESSES_KEY = "371os:ws:processes"
WS_REPORT_SECONDS = 10
# The consumer handlers these messages dispatch to (Channels maps "a.b" to the method a_b).
RECHECK_PRINCIPAL = "principal.recheck"
CHANNEL_ACCESS_CHANGED = "channel.access.changed"


def principal_groups(*, user_id: Any, api_key_id: Any = None) -> list[str]:
    """The groups a connection of this principal joins: its user's, and its key's if any."""
    groups = [f"principal.user.{user_id}"]
    if api_key_id is not None:
        groups.append(f"principal.key.{api_key_id}")
    return groups


def sockets_recheck_principal(*, user_id: Any = None, api_key_id: Any = None) -> None:
    """After commit, make every socket of this user (all their keys and tokens) or of this
    API key re-check its credentials now."""
    if user_id is not None:
        _send_on_commit(f"principal.user.{user_id}", {"type": RECHECK_PRINCIPAL})
    if api_key_id is not None:
        _send_on_commit(f"principal.key.{api_key_id}", {"type": RECHECK_PRINCIPAL})


def sockets_channel_access_changed(*, channel_id: uuid.UUID | str) -> None:
    """After commit, make every ws process forget the cached visibility of this channel."""
    _send_on_commit(
        CHANNEL_ACCESS_GROUP, {"type": CHANNEL_ACCESS_CHANGED, "channel_id": str(channel_id)}
    )


def _send_on_commit(group: str, message: dict[str, Any]) -> None:
    transaction.on_commit(lambda: _send(group, message), robust=True)


def _send(group: str, message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, message)
    except Exception as exc:  # noqa: BLE001 - the periodic re-check makes up for it
        logger.warning(
            "socket notification to %s not sent (%s: %s)", group, type(exc).__name__, exc
        )

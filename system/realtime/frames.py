"""The frames of `/v1/ws`, apart from the consumer: its close codes, the per-connection command
rate, and the parsing of a command's envelope and of event ids.

Close codes. daphne lets an application close only with 1000 or 3000-4999; the 1xxx codes
below are sent by the transport (system.devserver.bounded_daphne), the 4xxx ones by the consumer:

- 1009: a frame or message over WS_MAX_FRAME_BYTES (the transport refuses it unread).
- 1008: more than WS_SEND_BUFFER_BYTES wait to be sent to a client that stopped reading;
  reconnect and `resume`.
- 4401: not authenticated (bad, expired or revoked credentials, none in time); the reason
  says which.
- 4404: no WebSocket endpoint at this path.
- 4008: a limit of the platform's policy: commands over the rate, too many sockets of the
  principal or of the address, too many waiting to authenticate; the reason says which.
- 4009: a frame over WS_MAX_FRAME_BYTES that reached the application (under a server that
  does not bound frames itself, e.g. plain daphne).
- 4429: too many failed authentications from the address (system.realtime.guard).
"""

import time
from collections import deque
from typing import Any

from system.realtime.subscriptions import InvalidCommand

CLOSE_POLICY_LIMIT = 4008
CLOSE_TOO_BIG = 4009
CLOSE_UNAUTHENTICATED = 4401
CLOSE_UNKNOWN_PATH = 4404
# More than WS_COMMAND_OVERFLOW_CLOSE commands refused within this many seconds: closed.
REFUSAL_WINDOW = 10.0
NOT_TEXT = "Commands are JSON text frames."
NOT_JSON = "The frame is not valid JSON."


class CommandRate:
    """A connection's commands: a token bucket, and the commands it refused."""

    def __init__(self, *, rate: float, burst: int) -> None:
        self.rate = rate
        self.capacity = float(burst)
        self.tokens = float(burst)
        self.updated = time.monotonic()
        self.refused_in_a_row = 0  # for how often to say so
        self.refusals: deque[float] = deque()  # within REFUSAL_WINDOW, for closing

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            self.refused_in_a_row = 0
            return True
        self.refused_in_a_row += 1
        self.refusals.append(now)
        while now - self.refusals[0] > REFUSAL_WINDOW:
            self.refusals.popleft()
        return False


def command_parse(content: Any) -> tuple[str, Any]:
    """A command's name and its optional `id`; raises InvalidCommand."""
    if not isinstance(content, dict) or not isinstance(content.get("command"), str):
        details = {"command": ["Required string."]}
        raise InvalidCommand('A command is an object with a "command" string.', details=details)
    command_id = content.get("id")
    if command_id is not None and not (
        (isinstance(command_id, str) and len(command_id) <= 128)
        or (isinstance(command_id, int) and not isinstance(command_id, bool))
    ):
        raise InvalidCommand(details={"id": ["A string of at most 128 characters or a number."]})
    return content["command"], command_id


def event_id_parse(value: Any) -> int:
    """A last_event_id from a command (a number) or the query string (digits)."""
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidCommand(details={"last_event_id": ["A non-negative integer event id."]})
    return value

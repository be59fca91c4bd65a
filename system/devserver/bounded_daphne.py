"""daphne with the WebSocket transport bounded: `python -m system.devserver.bounded_daphne` takes
daphne's own arguments (`--fd N config.asgi:application`) and runs daphne with three changes
to its WebSocket protocol, each something only the transport can do:

- Frames and messages larger than WS_MAX_FRAME_BYTES are refused by the protocol itself with
  close code 1009 (message too big). daphne lets an application close only with 1000 or
  3000-4999, and autobahn, by default, drops the TCP connection instead of closing (1006).
- A client that stops reading while events keep coming is closed with 1008 (policy violation)
  once more than WS_SEND_BUFFER_BYTES wait in the socket's send buffer; it reconnects and
  resumes by event id. Without this the buffer grows without limit.
- The application's close reason reaches the client (daphne 4 sends the code alone), so a
  4401 says why.

Settings come from Django's (config.settings), loaded when daphne imports the application,
which it does before it makes the server.
"""

from typing import Any

from daphne.cli import CommandLineInterface
from daphne.server import Server
from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol
from django.conf import settings

CLOSE_POLICY_VIOLATION = 1008
CLOSE_DRAIN_SECONDS = 30
SEND_BUFFER_FULL = "Send buffer full: the client is not reading. Reconnect and resume."


def transport_buffered_bytes(transport: Any) -> int:
    """Bytes written to `transport` and not yet taken by the kernel: Twisted's
    FileDescriptor keeps them in `dataBuffer` (from `offset`) and `_tempDataBuffer`; a
    wrapping transport (TLS) adds those of the transport under it."""
    total = 0
    while transport is not None:
        data = getattr(transport, "dataBuffer", b"")
        total += len(data) - getattr(transport, "offset", 0)
        total += getattr(transport, "_tempDataLen", 0)
        transport = getattr(transport, "transport", None)
    return total


class BoundedWebSocketProtocol(WebSocketProtocol):
    def serverSend(self, content: Any, binary: bool = False) -> None:  # noqa: N802 (daphne's)
        # Once closing (the send buffer was full), what the application still sends is
        # dropped, as after a disconnect, not raised into it.
        if self.state in (self.STATE_CLOSING, self.STATE_CLOSED):
            return
        super().serverSend(content, binary)

    def handle_reply(self, message: dict[str, Any]) -> None:
        if message.get("type") == "websocket.close" and self.state != self.STATE_CONNECTING:
            self.sendClose(code=message.get("code") or 1000, reason=message.get("reason") or None)
            return
        super().handle_reply(message)
        if message.get("type") == "websocket.send" and self.state == self.STATE_OPEN:
            limit = self.factory.server_class.send_buffer_limit
            if transport_buffered_bytes(self.transport) > limit:
                self._fail_connection(CLOSE_POLICY_VIOLATION, SEND_BUFFER_FULL)


class BoundedServer(Server):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.websocket_max_message_size = settings.WS_MAX_FRAME_BYTES
        self.websocket_max_frame_size = settings.WS_MAX_FRAME_BYTES
        self.send_buffer_limit = settings.WS_SEND_BUFFER_BYTES

    # daphne makes its WebSocket factory inside run() and then sets its options (the sizes
    # above among them): the factory is given our protocol, and told to close rather than
    # drop the connection on a protocol failure, as it is assigned.
    @property
    def ws_factory(self) -> WebSocketFactory:
        return self._ws_factory

    @ws_factory.setter
    def ws_factory(self, factory: WebSocketFactory) -> None:
        factory.protocol = BoundedWebSocketProtocol
        # A client closed for its full send buffer reads the close frame only after what
        # was queued before it: time to drain it (nothing more is queued once closing).
        factory.setProtocolOptions(failByDrop=False, closeHandshakeTimeout=CLOSE_DRAIN_SECONDS)
        self._ws_factory = factory


class BoundedCommandLineInterface(CommandLineInterface):
    server_class = BoundedServer


if __name__ == "__main__":
    BoundedCommandLineInterface.entrypoint()

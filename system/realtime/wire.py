"""Writing one event's frame to many connections under daphne, without the per-send overhead.

An event goes to every connection that watches it: at 1,000 connections the cost per send is
the fan-out's latency. Through ASGI each send goes `websocket.send` -> daphne -> autobahn,
which frames the same text again for every connection, and Twisted, which buffers it and asks
the event loop to say when the socket is writable (two epoll changes and a loop turn per
connection) before writing it. Here the frame is made once per event (`frame`) and, when the
connection is daphne's and nothing else is queued on it, written to the socket at once.

Only what daphne would do is done: anything unexpected (another ASGI server, a connection not
open, permessage-deflate, data already queued, TLS) answers False and the caller sends through
ASGI as usual. Tests with WebsocketCommunicator take the ASGI path; the e2e tests run daphne.
"""

import functools
import struct
from collections.abc import Callable
from typing import Any

try:
    from daphne.server import Server as _DaphneServer
except ImportError:  # pragma: no cover - daphne is a dependency of the ws process
    _DaphneServer = None


def frame(text: str) -> bytes:
    """An unmasked, final WebSocket text frame (RFC 6455 5.2), as a server sends it."""
    payload = text.encode()
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x81, size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", 0x81, 126, size)
    else:
        header = struct.pack("!BBQ", 0x81, 127, size)
    return header + payload


def direct_writer(send: Any) -> Callable[[bytes], bool] | None:
    """For daphne's ASGI `send` of a WebSocket connection, a function that writes a frame to
    that connection and returns True, or returns False when the caller must use `send`.
    None for any other server."""
    if (
        _DaphneServer is None
        or not isinstance(send, functools.partial)
        or getattr(send.func, "__func__", None) is not _DaphneServer.handle_reply
        or len(send.args) != 1
        or send.keywords
    ):
        return None
    server, protocol = send.func.__self__, send.args[0]
    connections = server.connections
    open_state = getattr(protocol, "STATE_OPEN", None)
    if open_state is None or not hasattr(protocol, "send_queue"):
        return None

    def write(data: bytes) -> bool:
        details = connections.get(protocol)
        if details is None or details.get("disconnected"):
            return True  # daphne drops sends to a closed connection
        if (
            protocol.state != open_state
            or protocol.send_queue
            or getattr(protocol, "_perMessageCompress", None) is not None
        ):
            return False
        transport = protocol.transport
        if transport is None:
            return False
        _write_now(transport, data)
        return True

    return write


def _write_now(transport: Any, data: bytes) -> None:
    """Twisted's TCP transport buffers every write until the loop reports the socket writable;
    when nothing is buffered, send now (as asyncio's transports do) and buffer only the rest."""
    try:
        idle = (
            transport.connected
            and not transport.disconnecting
            and not transport.TLS
            and not transport._tempDataBuffer
            and len(transport.dataBuffer) == transport.offset
        )
        sock = transport.socket
    except AttributeError:
        idle = False
    if not idle:
        transport.write(data)
        return
    try:
        sent = sock.send(data)
    except (BlockingIOError, InterruptedError):
        sent = 0
    except OSError:
        # A broken connection: let Twisted find out and close it the usual way.
        sent = 0
    if sent < len(data):
        transport.write(data[sent:])

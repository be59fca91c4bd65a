"""WebSocket URL patterns, served by the `ws` process (daphne) through config.asgi.

`/v1/ws` is the spec's path; `/api/v1/ws` the same endpoint beside the REST API's prefix.
Any other path is accepted and closed at once with 4404 and a reason (an ASGI WebSocket
application cannot answer a handshake with 404, and without a route Channels' router raises,
which daphne reports as a 500).
"""

from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import URLRouter
from django.urls import URLPattern, re_path

from system.realtime.consumer import EventStreamConsumer
from system.realtime.frames import CLOSE_UNKNOWN_PATH
from system.realtime.origin import BrowserOriginValidator


class UnknownPathConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.accept()
        await self.close(code=CLOSE_UNKNOWN_PATH, reason="No WebSocket endpoint here; use /v1/ws.")


websocket_urlpatterns: list[URLPattern] = [
    re_path(r"^(?:api/)?v1/ws/?$", EventStreamConsumer.as_asgi()),
    re_path(r"", UnknownPathConsumer.as_asgi()),
]


def websocket_application() -> Any:
    """The ASGI application for WebSocket connections: origin check, then the routes."""
    return BrowserOriginValidator(URLRouter(websocket_urlpatterns))

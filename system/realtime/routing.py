"""WebSocket URL patterns, served by the `ws` process (daphne) through config.asgi.

`/v1/ws` is the spec's path; `/api/v1/ws` the same endpoint beside the REST API's prefix.
"""

from typing import Any

from channels.routing import URLRouter
from django.urls import URLPattern, re_path

from system.realtime.consumer import EventStreamConsumer
from system.realtime.origin import BrowserOriginValidator

websocket_urlpatterns: list[URLPattern] = [
    re_path(r"^(?:api/)?v1/ws/?$", EventStreamConsumer.as_asgi()),
]


def websocket_application() -> Any:
    """The ASGI application for WebSocket connections: origin check, then the routes."""
    return BrowserOriginValidator(URLRouter(websocket_urlpatterns))

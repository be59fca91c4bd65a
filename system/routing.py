"""WebSocket URL patterns, served by the `ws` process (daphne) through config.asgi.

The `/v1/ws` consumer (and its alias `/api/v1/ws`) is added here by the real-time issue.
"""

from django.urls import URLPattern

websocket_urlpatterns: list[URLPattern] = []

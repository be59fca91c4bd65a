"""Which browser pages may open a socket.

Browsers always send `Origin` on a WebSocket handshake and attach cookies and other ambient
credentials, so a foreign page must not get a socket: its origin has to be one of our hosts
(ALLOWED_HOSTS) or a trusted origin (CSRF_TRUSTED_ORIGINS, scheme and all, `*.` wildcards as
Django's CSRF check allows). Clients that send no Origin at all (servers, CLIs, the websockets
library) are not browsers and are let through; they authenticate like anyone else. Channels'
AllowedHostsOriginValidator refuses a missing Origin and reads the settings once at import,
hence this small validator.
"""

from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import is_same_domain, validate_host


def origin_allowed(origin: str) -> bool:
    try:
        parts = urlsplit(origin)
        hostname = parts.hostname
    except ValueError:
        return False
    if not parts.scheme or not hostname:
        return False
    if validate_host(hostname, settings.ALLOWED_HOSTS):
        return True
    for trusted in settings.CSRF_TRUSTED_ORIGINS:
        trusted_parts = urlsplit(trusted)
        if trusted_parts.scheme != parts.scheme:
            continue
        if trusted_parts.netloc == parts.netloc or (
            trusted_parts.netloc.startswith("*.")
            and is_same_domain(parts.netloc, trusted_parts.netloc[1:])
        ):
            return True
    return False


class BrowserOriginValidator:
    """ASGI middleware: refuse the handshake (HTTP 403) of a page from a foreign origin."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        origin = next(
            (value.decode("latin-1") for key, value in scope["headers"] if key == b"origin"),
            None,
        )
        if origin is not None and not origin_allowed(origin):
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)

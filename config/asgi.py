"""ASGI entry point: the `ws` process (daphne) serves WebSockets through it.

Django is set up before the routing is imported, because consumers import models.
"""

import gc
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Read by settings: under ASGI, persistent connections leak across event-loop threads, so the
# database connection is pooled (PostgreSQL) or closed after each use (SQLite).
os.environ.setdefault("DJANGO_SERVER_INTERFACE", "asgi")

from channels.routing import ProtocolTypeRouter
from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()

from system.realtime.routing import websocket_application  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": websocket_application(),
    }
)

# Everything imported so far lives as long as the process: moved out of the garbage
# collector's sight, so that its full passes walk only what connections allocate.
gc.freeze()

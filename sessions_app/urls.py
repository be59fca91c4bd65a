from rest_framework.routers import SimpleRouter

from sessions_app.eliza_views import ElizaSessionViewSet
from sessions_app.views import SessionViewSet


class OptionalSlashRouter(SimpleRouter):
    """ElizaOS's client calls both ".../sessions" and ".../sessions/": accept either."""

    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "/?"


v1 = SimpleRouter(trailing_slash=False)
v1.register("api/v1/sessions", SessionViewSet, basename="session")
eliza = OptionalSlashRouter()
eliza.register("api/messaging/sessions", ElizaSessionViewSet, basename="eliza-session")

urlpatterns = [*v1.urls, *eliza.urls]

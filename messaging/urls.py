from django.urls import path
from rest_framework.routers import SimpleRouter

from messaging.views import ChannelViewSet, ElizaSubmitView

router = SimpleRouter(trailing_slash=False)
router.register("api/v1/channels", ChannelViewSet, basename="channel")

urlpatterns = [
    path("api/messaging/submit", ElizaSubmitView.as_view(), name="eliza-submit"),
    *router.urls,
]

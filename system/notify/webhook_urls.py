from rest_framework.routers import SimpleRouter

from system.notify.webhook_views import WebhookViewSet

router = SimpleRouter(trailing_slash=False)
router.register("api/v1/webhooks", WebhookViewSet, basename="webhook")

urlpatterns = router.urls

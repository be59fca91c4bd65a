from django.urls import include, path

urlpatterns = [
    path("", include("system.notify.webhook_urls")),
    path("", include("system.notify.preference_urls")),
]

from django.urls import path

from system import views

urlpatterns = [
    path("", views.landing, name="landing"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("v1/ws", views.websocket_upgrade_required, name="ws-upgrade-required"),
    path("api/v1/ws", views.websocket_upgrade_required, name="api-ws-upgrade-required"),
]

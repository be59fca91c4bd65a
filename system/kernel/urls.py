from django.urls import path

from system.kernel import views

urlpatterns = [
    path("v1/ws", views.websocket_upgrade_required, name="ws-upgrade-required"),
    path("api/v1/ws", views.websocket_upgrade_required, name="api-ws-upgrade-required"),
    path("api/schema/", views.SchemaView.as_view(), name="schema"),
    path("api/docs/", views.SwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/docs/deprecations", views.DeprecationsDocView.as_view(), name="deprecations-doc"),
]

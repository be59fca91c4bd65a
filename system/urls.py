from django.urls import path

from system import views

urlpatterns = [
    path("", views.landing, name="landing"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("v1/ws", views.websocket_upgrade_required, name="ws-upgrade-required"),
    path("api/v1/ws", views.websocket_upgrade_required, name="api-ws-upgrade-required"),
    path("api/schema/", views.SchemaView.as_view(), name="schema"),
    path("api/docs/", views.SwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/v1/auth/token", views.TokenObtainView.as_view(), name="auth-token"),
    path("api/v1/auth/token/refresh", views.TokenRefreshView.as_view(), name="auth-token-refresh"),
    path("api/v1/auth/token/revoke", views.TokenRevokeView.as_view(), name="auth-token-revoke"),
    path("api/v1/auth/api-keys", views.ApiKeyListCreateView.as_view(), name="api-keys"),
    path(
        "api/v1/auth/api-keys/<int:key_id>/revoke",
        views.ApiKeyRevokeView.as_view(),
        name="api-key-revoke",
    ),
]

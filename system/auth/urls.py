from django.urls import path

from system.auth import views

urlpatterns = [
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

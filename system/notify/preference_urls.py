from django.urls import path

from system.notify.preference_views import NotificationSettingsView

urlpatterns = [
    path(
        "api/v1/auth/me/notifications",
        NotificationSettingsView.as_view(),
        name="auth-me-notifications",
    ),
]

from django.urls import path

from system.ops import events_api, views

urlpatterns = [
    path("", views.landing, name="landing"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.metrics, name="metrics"),
    path("api/v1/system/status", views.SystemStatusView.as_view(), name="system-status"),
    path("api/v1/system/config", views.SystemConfigView.as_view(), name="system-config"),
    path("api/v1/system/events", events_api.SystemEventListView.as_view(), name="system-events"),
    path("api/v1/system/tasks", views.SystemTaskListCreateView.as_view(), name="system-tasks"),
    path(
        "api/v1/system/tasks/<uuid:task_id>",
        views.SystemTaskDetailView.as_view(),
        name="system-task",
    ),
]

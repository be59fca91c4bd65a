from django.urls import path

from system import ops_views

urlpatterns = [
    path("metrics", ops_views.metrics, name="metrics"),
    path("api/v1/system/status", ops_views.SystemStatusView.as_view(), name="system-status"),
    path("api/v1/system/config", ops_views.SystemConfigView.as_view(), name="system-config"),
    path("api/v1/system/tasks", ops_views.SystemTaskListCreateView.as_view(), name="system-tasks"),
    path(
        "api/v1/system/tasks/<uuid:task_id>",
        ops_views.SystemTaskDetailView.as_view(),
        name="system-task",
    ),
]

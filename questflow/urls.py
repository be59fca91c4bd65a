from django.urls import path

from questflow import views

urlpatterns = [
    path("api/workflows", views.WorkflowCreateView.as_view(), name="workflows"),
    path("api/workflows/status", views.WorkflowStatusView.as_view(), name="workflows-status"),
    path(
        "api/workflows/templates",
        views.WorkflowTemplateListView.as_view(),
        name="workflow-templates",
    ),
    path("api/workflows/<str:workflow_id>", views.WorkflowDetailView.as_view(), name="workflow"),
    path(
        "api/workflows/<str:workflow_id>/cancel",
        views.WorkflowCancelView.as_view(),
        name="workflow-cancel",
    ),
    path("api/agents/csuite/meeting", views.MeetingView.as_view(), name="csuite-meeting"),
    path(
        "api/agents/csuite/meetings/<str:meeting_id>",
        views.MeetingDetailView.as_view(),
        name="csuite-meeting-detail",
    ),
    path("api/deploy/akash", views.DeploymentListCreateView.as_view(), name="akash-deployments"),
    path(
        "api/deploy/akash/<str:deployment_id>",
        views.DeploymentDetailView.as_view(),
        name="akash-deployment",
    ),
]

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from questflow import services
from questflow.models import Deployment, Meeting, Workflow, WorkflowStep
from system.kernel.exceptions import DomainError


class WorkflowStepInline(admin.TabularInline):
    model = WorkflowStep
    extra = 0
    can_delete = False
    fields = ("position", "agent_ref", "status", "instruction", "output", "error", "finished_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Workflow | None = None) -> bool:
        return False


@admin.register(Workflow)
class WorkflowAdmin(admin.ModelAdmin):
    list_display = ("name", "status", "progress_bar", "created_at", "started_at", "finished_at")
    list_filter = ("status", "template")
    search_fields = ("name", "=workflow_id")
    inlines = [WorkflowStepInline]
    actions = ["cancel"]
    readonly_fields = (
        "workflow_id",
        "name",
        "template",
        "status",
        "progress",
        "input",
        "result",
        "error",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="progress", ordering="progress")
    def progress_bar(self, workflow: Workflow) -> str:
        return format_html(
            '<progress max="100" value="{}"></progress> {}%', workflow.progress, workflow.progress
        )

    @admin.action(description="Cancel selected workflows", permissions=["change"])
    def cancel(self, request: HttpRequest, queryset: QuerySet) -> None:
        for workflow in queryset:
            try:
                services.workflow_cancel(workflow=workflow)
            except services.WorkflowNotActive:
                self.message_user(request, f"{workflow.name}: already finished", messages.WARNING)


@admin.register(Meeting)
class MeetingAdmin(admin.ModelAdmin):
    list_display = ("meeting_id", "topic", "status", "started_at", "finished_at")
    list_filter = ("status",)
    readonly_fields = (
        "meeting_id",
        "topic",
        "status",
        "agenda",
        "outcomes",
        "started_at",
        "finished_at",
        "error",
        "transcript_view",
    )
    exclude = ("transcript", "participants")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="transcript")
    def transcript_view(self, meeting: Meeting) -> str:
        return format_html_join(
            "",
            "<p><em>{}</em> <strong>{}</strong>: {}</p>",
            ((t["agenda_item"], t["title"], t["content"]) for t in meeting.transcript),
        )


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin):
    list_display = ("deployment_id", "name", "status", "backend", "created_at")
    list_filter = ("status", "backend")
    readonly_fields = (
        "deployment_id",
        "name",
        "status",
        "backend",
        "config",
        "sdl_view",
        "backend_output",
        "created_at",
        "updated_at",
    )
    exclude = ("sdl",)
    actions = ["resubmit"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="SDL")
    def sdl_view(self, deployment: Deployment) -> str:
        return format_html("<pre>{}</pre>", deployment.sdl)

    @admin.action(description="Re-submit selected (failed) deployments", permissions=["change"])
    def resubmit(self, request: HttpRequest, queryset: QuerySet) -> None:
        """Queued for the worker, like a new deployment: the backend never runs in a request."""
        for deployment in queryset:
            try:
                services.deployment_resubmit(deployment_id=deployment.deployment_id)
            except DomainError as exc:
                self.message_user(
                    request, f"{deployment.deployment_id}: {exc.message}", messages.WARNING
                )
            else:
                self.message_user(request, f"{deployment.deployment_id}: queued")

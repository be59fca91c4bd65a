"""Back office for system operations: the SystemTask list (read-only) and the system dashboard
(/admin/system/systemtask/dashboard/, linked from the admin index), which shows the status
object, counts, recent tasks and failures, refreshes itself every 10 s, and runs the three
system tasks through the same service as the API."""

import json

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from agents.selectors import agents_count_by_status
from sessions_app.selectors import sessions_count_by_status
from system.kernel.admin import ReadOnlyAdminMixin
from system.kernel.exceptions import DomainError
from system.kernel.policy import get_policy
from system.kernel.roles import user_roles
from system.models import SystemTask
from system.ops.status import status_current
from system.ops.system_tasks import (
    TASK_FIELDS,
    TASK_TYPES,
    system_task_create,
    system_tasks_recent,
)

DASHBOARD_REFRESH_SECONDS = 10


def _may_run_tasks(request: HttpRequest) -> bool:
    """The same rule as POST /api/v1/system/tasks: the roles of `system.tasks.run`."""
    rule = get_policy().actions.get("system.tasks.run")
    return bool(rule and user_roles(request.user) & rule.roles)


def _counts() -> dict[str, dict[str, int]]:
    rows = SystemTask.objects.values("status").annotate(n=Count("pk")).order_by("status")
    return {
        "agents": agents_count_by_status(),
        "sessions": sessions_count_by_status(),
        "system tasks": {row["status"]: row["n"] for row in rows},
    }


def _service_rows(status: dict) -> list[dict]:
    rows = []
    for name, state in status["services"].items():
        detail = status["details"].get(name, {})
        note = detail.get("error", "")
        if "workers" in detail:
            note = f"{note} fresh workers: {detail['workers']}".strip()
        rows.append(
            {"name": name, "state": state, "latency_ms": detail.get("latency_ms"), "note": note}
        )
    return rows


@admin.register(SystemTask)
class SystemTaskAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: tasks are made through the service (API or dashboard) and run by workers."""

    list_display = (
        "task_type",
        "status",
        "queued_at",
        "started_at",
        "finished_at",
        "requested_by",
        "short_error",
    )
    list_filter = ("task_type", "status")
    list_select_related = ("requested_by",)
    search_fields = ("=task_id",)
    ordering = ("-queued_at",)
    fields = (*TASK_FIELDS, "result_pretty", "error")
    readonly_fields = fields

    @admin.display(description="result")
    def result_pretty(self, task: SystemTask) -> str:
        if task.result is None:
            return "-"
        return format_html("<pre>{}</pre>", json.dumps(task.result, indent=2, sort_keys=True))

    @admin.display(description="error")
    def short_error(self, task: SystemTask) -> str:
        return (task.error[:80] + "…") if len(task.error) > 80 else task.error

    def get_urls(self) -> list:
        return [
            path(
                "dashboard/",
                self.admin_site.admin_view(self.dashboard_view),
                name="system_dashboard",
            ),
            path(
                "dashboard/run/",
                self.admin_site.admin_view(require_POST(self.run_view)),
                name="system_dashboard_run",
            ),
            *super().get_urls(),
        ]

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        recent = system_tasks_recent()
        status = status_current()
        context = {
            **self.admin_site.each_context(request),
            "title": "System dashboard",
            "opts": self.model._meta,
            "refresh_seconds": DASHBOARD_REFRESH_SECONDS,
            "status": status,
            "service_rows": _service_rows(status),
            "counts": _counts(),
            "recent_tasks": recent[:10],
            "recent_errors": recent.filter(status=SystemTask.Status.FAILED)[:10],
            "task_types": TASK_TYPES,
            "may_run_tasks": _may_run_tasks(request),
        }
        return TemplateResponse(request, "admin/system_dashboard.html", context)

    def run_view(self, request: HttpRequest) -> HttpResponse:
        if not _may_run_tasks(request):
            raise PermissionDenied
        try:
            task = system_task_create(
                task_type=request.POST.get("task_type", ""), requested_by=request.user
            )
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
        else:
            self.message_user(
                request, f"Queued {task.task_type} ({task.task_id}).", messages.SUCCESS
            )
        # Post/redirect/get: the page's automatic refresh never repeats the POST.
        return HttpResponseRedirect(reverse("admin:system_dashboard"))

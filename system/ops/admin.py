"""Back office for system operations: the SystemTask list (read-only) and the system dashboard
(/admin/system/systemtask/dashboard/, linked from the admin index), which shows the status
object, counts, WebSocket connections per ws process, LLM circuits, recent API errors, charts
over the last hour or day (system.ops.dashboard), recent tasks and failures, refreshes itself
every 10 s, and runs the three system tasks through the same service as the API (a backup
only after a confirmation page)."""

import json

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from agents.selectors import agents_count_by_status
from sessions_app.selectors import sessions_count_by_status
from system.kernel.admin import ReadOnlyAdminMixin
from system.kernel.exceptions import DomainError
from system.kernel.policy import get_policy
from system.kernel.roles import user_roles
from system.models import SystemTask
from system.notify.health import webhook_health
from system.ops import dashboard
from system.ops.status import status_current
from system.ops.system_tasks import (
    TASK_FIELDS,
    TASK_TYPES,
    system_task_create,
    system_tasks_recent,
)

DASHBOARD_REFRESH_SECONDS = 10
# Tasks that ask "are you sure?" on a page of their own before they are queued.
CONFIRMED_TASKS = {
    "backup_database": "Run a database backup now? It writes to BACKUP_DIR ({backup_dir}) "
    "and reads the whole database while it runs.",
}


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


def _task_rows(tasks) -> list[SystemTask]:
    """The tasks, each with its times as the page shows them ("3 minutes ago")."""
    rows = list(tasks)
    for task in rows:
        task.queued_when = dashboard.when(task.queued_at)
        task.finished_when = dashboard.when(task.finished_at)
    return rows


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
        range_name = request.GET.get("range", "hour")
        if range_name not in dashboard.RANGES:
            range_name = "hour"
        context = {
            **self.admin_site.each_context(request),
            "title": "System dashboard",
            "opts": self.model._meta,
            "refresh_seconds": DASHBOARD_REFRESH_SECONDS,
            "status": status,
            "service_rows": _service_rows(status),
            "counts": _counts(),
            "status_when": dashboard.when(parse_datetime(status["timestamp"])),
            "recent_tasks": _task_rows(recent[:10]),
            "recent_errors": _task_rows(recent.filter(status=SystemTask.Status.FAILED)[:10]),
            "task_types": TASK_TYPES,
            "may_run_tasks": _may_run_tasks(request),
            "ws": dashboard.ws_processes(),
            "circuits": dashboard.llm_circuits(),
            "api_errors": dashboard.api_errors(),
            "range": range_name,
            "ranges": dashboard.RANGES,
            "charts": dashboard.charts(range_name),
            "webhook_health": webhook_health(),
        }
        return TemplateResponse(request, "admin/system_dashboard.html", context)

    def run_view(self, request: HttpRequest) -> HttpResponse:
        if not _may_run_tasks(request):
            raise PermissionDenied
        task_type = request.POST.get("task_type", "")
        if task_type in CONFIRMED_TASKS and request.POST.get("confirmed") != "1":
            # Nothing is queued: the page posts the same form again with confirmed=1.
            return TemplateResponse(
                request,
                "admin/system_task_confirm.html",
                {
                    **self.admin_site.each_context(request),
                    "title": f"Run {task_type}?",
                    "opts": self.model._meta,
                    "task_type": task_type,
                    "question": CONFIRMED_TASKS[task_type].format(backup_dir=settings.BACKUP_DIR),
                },
            )
        try:
            task = system_task_create(task_type=task_type, requested_by=request.user)
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
        else:
            self.message_user(
                request, f"Queued {task.task_type} ({task.task_id}).", messages.SUCCESS
            )
        # Post/redirect/get: the page's automatic refresh never repeats the POST.
        return HttpResponseRedirect(reverse("admin:system_dashboard"))

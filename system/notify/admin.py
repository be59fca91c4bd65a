"""Webhook endpoints and their delivery log in the back office.

Endpoints are made over the API (where the URL is checked and the secret shown once), so the
back office adds none; it shows them, turns them on or off and deletes them through the same
services as the API. No secret is ever shown here. Deliveries are read-only, with an action
that sends the selected ones again (the API's retry)."""

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from system.kernel.exceptions import DomainError
from system.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from system.notify import webhooks

RECENT_DELIVERIES = 20
_SECRETS = ("secret", "previous_secret")


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = (
        "url",
        "owner",
        "enabled",
        "failing_since",
        "pending_count",
        "failed_count",
        "created_at",
    )
    list_filter = ("enabled",)
    search_fields = ("url", "owner__username", "=endpoint_id")
    list_select_related = ("owner",)
    exclude = _SECRETS
    fields = (
        "endpoint_id",
        "url",
        "owner",
        "api_key",
        "description",
        "event_types",
        "filter",
        "enabled",
        "disabled_reason",
        "failing_since",
        "previous_secret_expires_at",
        "created_at",
        "updated_at",
        "recent_deliveries",
    )
    # What the owner chose is changed over the API; here only on/off and the note.
    readonly_fields = tuple(f for f in fields if f not in ("enabled", "description"))

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # Two counts in the list's one query (grouped over the page's endpoints' deliveries).
        return (
            super()
            .get_queryset(request)
            .annotate(
                pending=Count("deliveries", filter=Q(deliveries__status="pending")),
                failed=Count("deliveries", filter=Q(deliveries__status="failed")),
            )
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="pending", ordering="pending")
    def pending_count(self, endpoint: WebhookEndpoint) -> int:
        return endpoint.pending

    @admin.display(description="failed", ordering="failed")
    def failed_count(self, endpoint: WebhookEndpoint) -> int:
        return endpoint.failed

    @admin.display(description="recent deliveries")
    def recent_deliveries(self, endpoint: WebhookEndpoint) -> str:
        rows = WebhookDelivery.objects.filter(endpoint=endpoint).order_by("-id")[:RECENT_DELIVERIES]
        body = format_html_join(
            "",
            '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>'
            "<td>{}</td></tr>",
            (
                (
                    reverse("admin:system_webhookdelivery_change", args=[d.pk]),
                    d.pk,
                    d.event_type,
                    d.status,
                    d.attempts,
                    d.last_status_code or "-",
                    d.created_at,
                )
                for d in rows
            ),
        )
        every = reverse("admin:system_webhookdelivery_changelist") + f"?endpoint={endpoint.pk}"
        return format_html(
            "<table><tr><th>id</th><th>event</th><th>status</th><th>attempts</th>"
            "<th>last code</th><th>created</th></tr>{}</table>"
            '<p><a href="{}">All deliveries of this endpoint</a></p>',
            body,
            every,
        )

    def save_model(
        self, request: HttpRequest, obj: WebhookEndpoint, form: forms.Form, change: bool
    ) -> None:
        changes = {name: form.cleaned_data[name] for name in form.changed_data}
        webhooks.webhook_update(endpoint=obj, **changes)

    def delete_model(self, request: HttpRequest, obj: WebhookEndpoint) -> None:
        webhooks.webhook_delete(endpoint=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for endpoint in queryset:
            webhooks.webhook_delete(endpoint=endpoint)


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = ("number", "started_at", "finished_at", "status_code", "latency_ms", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    """Read-only: the dispatcher writes deliveries, the worker their attempts."""

    list_display = (
        "id",
        "endpoint_url",
        "event_type",
        "event_id",
        "status",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "created_at",
        "finished_at",
    )
    list_filter = ("status", "endpoint")
    search_fields = ("=id", "=event_id", "message_id")
    list_select_related = ("endpoint",)
    ordering = ("-id",)
    show_full_result_count = False
    actions = ["retry_selected"]
    inlines = [WebhookAttemptInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("system.change_webhookdelivery")

    @admin.display(description="endpoint", ordering="endpoint__url")
    def endpoint_url(self, delivery: WebhookDelivery) -> str:
        return delivery.endpoint.url

    @admin.action(description="Retry selected deliveries", permissions=["retry"])
    def retry_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        retried = skipped = 0
        for delivery in queryset:
            try:
                webhooks.webhook_delivery_retry(delivery=delivery)
            except DomainError:
                skipped += 1  # pending: already scheduled
            else:
                retried += 1
        self.message_user(request, f"Retrying {retried} delivery(ies).", messages.SUCCESS)
        if skipped:
            self.message_user(
                request, f"{skipped} pending delivery(ies) already scheduled.", messages.WARNING
            )

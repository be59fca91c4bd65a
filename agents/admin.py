from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet, Sum
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from agents import admin_usage, selectors, services
from agents.exceptions import InvalidAgentConfig
from agents.models import Agent, UsageRecord
from agents.roster import AGENT_TYPES
from agents.runtime import get_router
from agents.validation import MAX_SKILLS, validate_agent_fields
from system.kernel.exceptions import DomainError

_USAGE_ROWS_SHOWN = 25
# The config's fields as the form shows them: the model settings, then the budget.
_MODEL_FIELDS = (
    "model",
    "temperature",
    "max_tokens",
    "top_p",
    "frequency_penalty",
    "presence_penalty",
)
_CONFIG_FIELDS = (*_MODEL_FIELDS, "daily_budget_usd")
_STATE_FIELDS = ("agent_id", "status", "status_reason", "created_at", "updated_at", "last_active")


class AgentForm(forms.ModelForm):
    """The config as validated fields; saving goes through agents.services, which applies
    the same validation as the REST API."""

    model = forms.CharField(help_text="A model alias from config/llm_routing.yaml")
    temperature = forms.FloatField(min_value=0, max_value=2)
    max_tokens = forms.IntegerField(min_value=1, max_value=200_000)
    top_p = forms.FloatField(min_value=0, max_value=1)
    frequency_penalty = forms.FloatField(min_value=-2, max_value=2)
    presence_penalty = forms.FloatField(min_value=-2, max_value=2)
    daily_budget_usd = forms.DecimalField(
        min_value=Decimal(0), required=False, help_text="Optional daily spend limit in USD"
    )
    skills_text = forms.CharField(
        label="Skills", required=False, help_text=f"Comma-separated, at most {MAX_SKILLS}"
    )
    type = forms.ChoiceField(
        choices=[(t, f"{admin_usage.type_label(t)} ({t})") for t in AGENT_TYPES]
    )

    class Meta:
        model = Agent
        fields = ["name", "type", "system_prompt"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["model"].help_text += f" ({', '.join(get_router().aliases())})"
        self.fields["system_prompt"].required = False
        # A new agent already has its UUID (the field's default), so "is it new" is Django's
        # own adding flag, never `pk`: the add form must let staff choose the type.
        adding = self.instance._state.adding
        config = settings.DEFAULT_AGENT_CONFIG if adding else self.instance.config
        for field in _CONFIG_FIELDS:
            self.fields[field].initial = config.get(field)
        if adding:
            self.fields["skills_text"].help_text += "; empty: the type's default skills"
            self.fields["system_prompt"].help_text = "Empty: the type's persona"
        else:
            self.fields["skills_text"].initial = ", ".join(self.instance.skills)
            self.fields["type"].disabled = True

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        data = self.service_data()
        if self.instance._state.adding:
            data["type"] = cleaned["type"]
        try:
            validate_agent_fields(data, base_config=dict(settings.DEFAULT_AGENT_CONFIG))
        except InvalidAgentConfig as exc:
            for field, problems in exc.details.items():
                name = field.removeprefix("config.")
                target = (
                    name if name in self.fields else ("skills_text" if name == "skills" else None)
                )
                self.add_error(target, problems)
        return cleaned

    def service_data(self) -> dict[str, Any]:
        data = self.cleaned_data
        config = {k: data[k] for k in _MODEL_FIELDS}
        budget = data.get("daily_budget_usd")
        config["daily_budget_usd"] = str(budget) if budget is not None else None
        result = {
            "name": data["name"],
            "config": config,
            "system_prompt": data.get("system_prompt") or "",
        }
        if data.get("skills_text", "").strip() or not self.instance._state.adding:
            result["skills"] = [
                s.strip() for s in data.get("skills_text", "").split(",") if s.strip()
            ]
        return result


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    form = AgentForm
    # The changelist refreshes itself every 30 s (templates/admin/agents/agent/change_list.html);
    # its figures come from one annotated query (selectors.agents_with_usage_today).
    list_display = (
        "name",
        "status_badge",
        "type_label",
        "provider_model",
        "spend_today",
        "calls_today",
        "errors_today",
        "last_error",
        "last_active",
    )
    list_filter = ("status", "type")
    search_fields = ("name",)
    actions = ["start", "stop", "restart"]
    readonly_fields = (*_STATE_FIELDS, "usage_chart", "recent_messages", "recent_errors", "usage")
    fieldsets = [
        (None, {"fields": ["name", "type", "system_prompt", "skills_text"]}),
        ("Model", {"fields": list(_CONFIG_FIELDS)}),
        ("State", {"fields": list(_STATE_FIELDS)}),
        ("Last 24 hours", {"fields": ["usage_chart"]}),
        ("Recent conversations", {"fields": ["recent_messages"]}),
        ("Recent errors", {"fields": ["recent_errors"]}),
        ("Usage ledger", {"fields": ["usage"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return selectors.agents_with_usage_today(queryset=super().get_queryset(request))

    @admin.display(description="status", ordering="status")
    def status_badge(self, agent: Agent) -> str:
        return admin_usage.status_badge(agent.status)

    @admin.display(description="type", ordering="type")
    def type_label(self, agent: Agent) -> str:
        return format_html(
            '<span style="white-space:nowrap">{}</span>', admin_usage.type_label(agent.type)
        )

    @admin.display(description="provider / model")
    def provider_model(self, agent: Agent) -> str:
        return admin_usage.provider_model(agent)

    @admin.display(description="spend today / budget", ordering="spent_today")
    def spend_today(self, agent: Agent) -> str:
        return admin_usage.spend_against_budget(
            Decimal(str(agent.spent_today)), selectors.agent_daily_budget(agent=agent)
        )

    @admin.display(description="calls today", ordering="calls_today")
    def calls_today(self, agent: Agent) -> int:
        return agent.calls_today

    @admin.display(description="errors today", ordering="errors_today")
    def errors_today(self, agent: Agent) -> int:
        return agent.errors_today

    @admin.display(description="last error")
    def last_error(self, agent: Agent) -> str:
        return admin_usage.last_error(agent.last_error_code, agent.status_reason, agent.status)

    @admin.display(description="calls and cost per hour")
    def usage_chart(self, agent: Agent) -> str:
        if agent._state.adding:
            return "-"
        return admin_usage.usage_chart(selectors.agent_usage_hourly(agent=agent))

    @admin.display(description="messages it sent")
    def recent_messages(self, agent: Agent) -> str:
        if agent._state.adding:
            return "-"
        return admin_usage.recent_messages(agent)

    @admin.display(description="failed calls")
    def recent_errors(self, agent: Agent) -> str:
        if agent._state.adding:
            return "-"
        return admin_usage.recent_failures(agent, selectors.agent_recent_failures(agent=agent))

    @admin.display(description="usage (latest calls)")
    def usage(self, agent: Agent) -> str:
        if agent._state.adding:
            return "-"
        ledger = UsageRecord.objects.filter(agent=agent)
        totals = ledger.aggregate(
            calls=Count("id"),
            failed=Count("id", filter=Q(success=False)),
            prompt=Sum("prompt_tokens"),
            completion=Sum("completion_tokens"),
            cost=Sum("cost_usd"),
        )
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    r.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                    r.provider,
                    r.model,
                    r.prompt_tokens,
                    r.completion_tokens,
                    f"{r.cost_usd:.8f}",  # PostgreSQL's Decimal for 0 would print 0E-8
                    # Formatted here: format_html escapes every argument to a string first,
                    # so a format spec such as {:.0f} in the template raises on it.
                    f"{r.latency_ms:.0f}",
                    "ok" if r.success else r.error_code,
                )
                for r in ledger[:_USAGE_ROWS_SHOWN]
            ),
        )
        return format_html(
            "<p>{} calls ({} failed), {} prompt + {} completion tokens, ${} in all.</p>"
            "<table><tr><th>time</th><th>provider</th><th>model</th><th>prompt</th><th>completion</th>"
            "<th>cost</th><th>ms</th><th>result</th></tr>{}</table>",
            totals["calls"],
            totals["failed"],
            totals["prompt"] or 0,
            totals["completion"] or 0,
            # As the rows show it: PostgreSQL's SUM keeps the scale, SQLite's drops it.
            f"{totals['cost'] or 0:.8f}",
            rows,
        )

    def save_model(self, request: HttpRequest, obj: Agent, form: AgentForm, change: bool) -> None:
        data = form.service_data()
        if change:
            saved = services.agent_update(agent=obj, data=data)
        else:
            saved = services.agent_create(
                type=form.cleaned_data["type"], actor=request.user, **data
            )
        obj.pk = saved.pk
        obj.refresh_from_db()

    def delete_model(self, request: HttpRequest, obj: Agent) -> None:
        services.agent_delete(agent=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for agent in queryset:
            services.agent_delete(agent=agent)

    def _apply(self, request: HttpRequest, queryset: QuerySet, service: Any, verb: str) -> None:
        done, failed = 0, []
        for agent in queryset:
            try:
                service(agent=agent)
                done += 1
            except DomainError as exc:
                failed.append(f"{agent.name}: {exc.message}")
        if done:
            self.message_user(request, f"{verb} {done} agent(s).", messages.SUCCESS)
        for failure in failed:
            self.message_user(request, failure, messages.WARNING)

    @admin.action(description="Start selected agents", permissions=["change"])
    def start(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._apply(request, queryset, services.agent_start, "Started")

    @admin.action(description="Stop selected agents", permissions=["change"])
    def stop(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._apply(request, queryset, services.agent_stop, "Stopped")

    @admin.action(description="Restart selected agents", permissions=["change"])
    def restart(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._apply(request, queryset, services.agent_restart, "Restarted")

"""The agent admin's back-office pictures, rendered server-side with no external assets: the
status badge, today's spend against the budget, the last 24 hours as an inline SVG bar chart,
the agent's recent messages and failures. The figures come from agents.selectors."""

from collections.abc import Iterable
from decimal import Decimal

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.text import Truncator

from agents.models import Agent, UsageRecord
from agents.roster import ROSTER
from agents.runtime import UnknownModel, get_router
from agents.selectors import UsageHour
from messaging.models import Message

# Status → badge colour (background); unknown statuses get the neutral one.
BADGE_COLOURS = {
    Agent.Status.RUNNING: "#1a7f37",
    Agent.Status.STOPPED: "#6e7781",
    Agent.Status.ERROR: "#cf222e",
    Agent.Status.CREATED: "#0969da",
}
_NEUTRAL = "#8c959f"
LAST_ERROR_CHARS = 60
RECENT_ROWS = 10

# The chart: two panels (calls above, cost below) of one bar per hour.
_BAR_W, _GAP, _PANEL_H, _LEFT, _TOP = 22, 4, 90, 56, 18
_CALLS_COLOUR, _ERRORS_COLOUR, _COST_COLOUR = "#0969da", "#cf222e", "#bf8700"


def status_badge(status: str) -> SafeString:
    colour = BADGE_COLOURS.get(status, _NEUTRAL)
    return format_html(
        '<span class="agent-status agent-status-{}" style="background:{};color:#fff;'
        'padding:1px 8px;border-radius:9px;font-size:11px;font-weight:600">{}</span>',
        status,
        colour,
        status,
    )


def type_label(agent_type: str) -> str:
    """The roster's title: "CFO · Cash"; custom and unknown types as named."""
    entry = ROSTER.get(agent_type)
    if entry is None:
        return agent_type
    if agent_type == "custom":
        return entry.display_name
    return f"{entry.title} · {entry.display_name}"


def provider_model(agent: Agent) -> str:
    """The model alias and where it goes first: "gpt-4 → openai/gpt-4o"."""
    alias = agent.config.get("model", "")
    try:
        candidates = get_router().resolve(alias)
    except UnknownModel:  # an alias gone from the routing file: say so, never break the list
        return f"{alias} (unknown alias)"
    if not candidates:
        return f"{alias} (no configured provider)"
    return f"{alias} → {candidates[0].provider}/{candidates[0].model}"


def spend_against_budget(spent: Decimal, budget: Decimal) -> SafeString:
    """ "$0.42 / $5.00" with a small bar, red once the budget is used up."""
    share = min(1.0, float(spent / budget)) if budget > 0 else (1.0 if spent > 0 else 0.0)
    colour = "#cf222e" if share >= 1 else ("#bf8700" if share >= 0.8 else "#1a7f37")
    return format_html(
        '<span class="agent-spend" style="white-space:nowrap">${} / ${}'
        '<span style="display:inline-block;vertical-align:middle;margin-left:6px;width:60px;'
        'height:6px;background:#d0d7de;border-radius:3px"><span class="agent-spend-bar" '
        'style="display:block;height:6px;width:{}%;background:{};border-radius:3px"></span>'
        "</span></span>",
        f"{spent:.2f}",
        f"{budget:.2f}",
        f"{share * 100:.0f}",
        colour,
    )


def last_error(code: str | None, status_reason: str, status: str) -> str:
    """The agent's status reason when it is in error, else its latest failed call's code."""
    text = status_reason if status == Agent.Status.ERROR and status_reason else (code or "")
    return Truncator(text).chars(LAST_ERROR_CHARS) if text else "-"


def usage_chart(series: list[UsageHour]) -> SafeString:
    """An SVG bar chart of the hours in `series`: calls (failed part in red) and cost. Each
    bar carries its figures in data- attributes and a <title> tooltip."""
    n = len(series)
    width = _LEFT + n * (_BAR_W + _GAP) + 10
    height = _TOP + 2 * _PANEL_H + 60
    max_calls = max((h.calls for h in series), default=0) or 1
    max_cost = max((h.cost for h in series), default=Decimal(0)) or Decimal(1)
    calls_base, cost_base = _TOP + _PANEL_H, _TOP + 2 * _PANEL_H + 30
    parts: list[SafeString] = []
    for i, hour in enumerate(series):
        x = _LEFT + i * (_BAR_W + _GAP)
        label = hour.start.strftime("%H:00")
        tip = (
            f"{hour.start:%Y-%m-%d %H:00} UTC: {hour.calls} calls ({hour.errors} failed), "
            f"${hour.cost:.6f}"
        )
        calls_h = round(_PANEL_H * hour.calls / max_calls, 1)
        errors_h = round(_PANEL_H * hour.errors / max_calls, 1)
        cost_h = round(float(_PANEL_H * hour.cost / max_cost), 1)
        parts.append(
            format_html(
                '<rect class="bar bar-calls" x="{}" y="{}" width="{}" height="{}" fill="{}" '
                'data-hour="{}" data-calls="{}" data-errors="{}"><title>{}</title></rect>'
                '<rect class="bar-errors" x="{}" y="{}" width="{}" height="{}" fill="{}"/>'
                '<rect class="bar bar-cost" x="{}" y="{}" width="{}" height="{}" fill="{}" '
                'data-hour="{}" data-cost="{}"><title>{}</title></rect>',
                x, calls_base - calls_h, _BAR_W, calls_h, _CALLS_COLOUR,
                label, hour.calls, hour.errors, tip,
                x, calls_base - errors_h, _BAR_W, errors_h, _ERRORS_COLOUR,
                x, cost_base - cost_h, _BAR_W, cost_h, _COST_COLOUR,
                label, f"{hour.cost:.8f}", tip,
            )
        )  # fmt: skip
        if i % 3 == 0 or i == n - 1:
            parts.append(
                format_html(
                    '<text x="{}" y="{}" font-size="10" text-anchor="middle">{}</text>',
                    x + _BAR_W / 2,
                    cost_base + 14,
                    label,
                )
            )
    axes = format_html(
        '<text x="4" y="{}" font-size="11" font-weight="600">calls</text>'
        '<text x="4" y="{}" font-size="10">max {}</text>'
        '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#8c959f"/>'
        '<text x="4" y="{}" font-size="11" font-weight="600">cost</text>'
        '<text x="4" y="{}" font-size="10">${}</text>'
        '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#8c959f"/>',
        _TOP + 10, _TOP + 24, max_calls if any(h.calls for h in series) else 0,
        _LEFT - 2, calls_base, width - 8, calls_base,
        calls_base + 40, calls_base + 54, f"{max_cost if any(h.cost for h in series) else 0:.4f}",
        _LEFT - 2, cost_base, width - 8, cost_base,
    )  # fmt: skip
    total_calls = sum(h.calls for h in series)
    total_cost = sum((h.cost for h in series), Decimal(0))
    return format_html(
        '<p class="agent-usage-summary">Last {} hours: {} calls ({} failed), ${} '
        '(hourly, UTC; <span style="color:{}">■</span> calls, <span style="color:{}">■</span> '
        'failed, <span style="color:{}">■</span> cost)</p>'
        '<svg class="agent-usage-chart" xmlns="http://www.w3.org/2000/svg" width="{}" '
        'height="{}" viewBox="0 0 {} {}" role="img" aria-label="Calls and cost per hour">'
        "{}{}</svg>",
        n, total_calls, sum(h.errors for h in series), f"{total_cost:.6f}",
        _CALLS_COLOUR, _ERRORS_COLOUR, _COST_COLOUR,
        width, height, width, height, axes, SafeString("".join(parts)),
    )  # fmt: skip


def _table(headers: Iterable[str], rows: SafeString, css_class: str, empty: str) -> SafeString:
    if not rows:
        return format_html('<p class="{}">{}</p>', css_class, empty)
    head = format_html_join("", "<th>{}</th>", ((h,) for h in headers))
    return format_html('<table class="{}"><tr>{}</tr>{}</table>', css_class, head, rows)


def recent_messages(agent: Agent, limit: int = RECENT_ROWS) -> SafeString:
    """The last messages the agent sent, with their channel. One query."""
    sent = (
        Message.objects.filter(sender_type=Message.SenderType.AGENT, sender_id=str(agent.pk))
        .select_related("channel")
        .order_by("-sent_at")[:limit]
    )
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{} ({})</td><td>{}</td></tr>",
        (
            (
                m.sent_at.strftime("%Y-%m-%d %H:%M:%S"),
                m.channel.name,
                m.channel.type,
                Truncator(m.content).chars(120),
            )
            for m in sent
        ),
    )
    return _table(("sent", "channel", "message"), rows, "agent-recent-messages", "No messages yet.")


def recent_failures(agent: Agent, failures: Iterable[UsageRecord]) -> SafeString:
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (r.created_at.strftime("%Y-%m-%d %H:%M:%S"), r.provider, r.model, r.error_code)
            for r in failures
        ),
    )
    reason = (
        format_html(
            '<p class="agent-status-reason">Status {}: {}</p>', agent.status, agent.status_reason
        )
        if agent.status_reason
        else SafeString("")
    )
    return format_html(
        "{}{}",
        reason,
        _table(
            ("time", "provider", "model", "error"), rows, "agent-recent-errors", "No failed calls."
        ),
    )

"""The dashboard's charts as inline SVG drawn on the server (the approach of the agent admin's
usage chart, agents/admin_usage.py): no JavaScript, no external asset, a <title> tooltip and
data- attributes on every bar, the axis labelled with its maximum and a few bucket times."""

from dataclasses import dataclass
from datetime import datetime

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

_TOP, _BOTTOM, _LEFT, _RIGHT, _PLOT_H = 26, 22, 46, 8, 110
_WIDTH = 470
_ROW_H, _NAME_W, _HBAR_W = 20, 150, 300


@dataclass(frozen=True)
class Bucket:
    start: datetime
    value: float
    tip: str = ""  # more than the value, for the tooltip


def _number(value: float) -> str:
    if value == int(value):
        return str(int(value))
    return f"{value:.2f}" if value >= 1 else f"{value:.4f}"


def column_chart(
    *, title: str, buckets: list[Bucket], colour: str, css_class: str, per_hour: bool
) -> SafeString:
    """One bar per bucket, oldest left, with the value's maximum on the y axis and times on
    the x axis (UTC, every sixth or tenth bucket)."""
    n = max(len(buckets), 1)
    plot_w = _WIDTH - _LEFT - _RIGHT
    step = plot_w / n
    bar_w = max(step - 1.5, 1.0)
    base = _TOP + _PLOT_H
    peak = max((b.value for b in buckets), default=0) or 1
    label_every = 6 if per_hour else 10
    fmt = "%H:00" if per_hour else "%H:%M"
    bars = []
    for i, bucket in enumerate(buckets):
        x = round(_LEFT + i * step, 1)
        h = round(_PLOT_H * bucket.value / peak, 1)
        tip = f"{bucket.start:%Y-%m-%d {fmt}} UTC: {_number(bucket.value)} {bucket.tip}".strip()
        bars.append(
            format_html(
                '<rect class="bar" x="{}" y="{}" width="{}" height="{}" fill="{}" '
                'data-start="{}" data-value="{}"><title>{}</title></rect>',
                x, base - h, round(bar_w, 1), h, colour,
                bucket.start.isoformat(), _number(bucket.value), tip,
            )
        )  # fmt: skip
        last = i == len(buckets) - 1
        if (i % label_every == 0 and len(buckets) - i > label_every / 2) or last:
            bars.append(
                format_html(
                    '<text x="{}" y="{}" font-size="10" text-anchor="{}">{}</text>',
                    round(x + bar_w, 1) if last else round(x + bar_w / 2, 1),
                    base + 14,
                    "end" if last else "middle",
                    bucket.start.strftime(fmt),
                )
            )
    height = base + _BOTTOM
    total = sum(b.value for b in buckets)
    return format_html(
        '<figure class="dashboard-chart {}"><figcaption>{} <span class="quiet">(total {}, '
        "max {} per {})</span></figcaption>"
        '<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" viewBox="0 0 {} {}" '
        'role="img" aria-label="{}">'
        '<text x="{}" y="{}" font-size="10" text-anchor="end">{}</text>'
        '<text x="{}" y="{}" font-size="10" text-anchor="end">0</text>'
        '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#d0d7de" stroke-dasharray="3,3"/>'
        '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#8c959f"/>{}</svg></figure>',
        css_class, title, _number(total), _number(peak if total else 0),
        "hour" if per_hour else "minute",
        _WIDTH, height, _WIDTH, height, title,
        _LEFT - 4, _TOP + 4, _number(peak if total else 0),
        _LEFT - 4, base,
        _LEFT, _TOP, _WIDTH - _RIGHT, _TOP,
        _LEFT, base, _WIDTH - _RIGHT, base, SafeString("".join(bars)),
    )  # fmt: skip


@dataclass(frozen=True)
class Row:
    name: str
    value: float
    label: str  # the value as shown ("$0.0123")
    tip: str


def bar_list_chart(*, title: str, rows: list[Row], colour: str, css_class: str) -> SafeString:
    """Horizontal bars, one per row (biggest first, as given), with the row's name left."""
    if not rows:
        return format_html(
            '<figure class="dashboard-chart {}"><figcaption>{}</figcaption>'
            '<p class="quiet">Nothing in this range.</p></figure>',
            css_class,
            title,
        )
    peak = max(r.value for r in rows) or 1
    height = 8 + len(rows) * _ROW_H
    width = _NAME_W + _HBAR_W + 110
    items = format_html_join(
        "",
        '<text x="{}" y="{}" font-size="11" text-anchor="end">{}</text>'
        '<rect class="bar" x="{}" y="{}" width="{}" height="{}" fill="{}" data-name="{}" '
        'data-value="{}"><title>{}</title></rect>'
        '<text x="{}" y="{}" font-size="10">{}</text>',
        (
            (
                _NAME_W - 6, 4 + i * _ROW_H + 13, r.name[:24],
                _NAME_W, 4 + i * _ROW_H + 2, max(round(_HBAR_W * r.value / peak, 1), 1),
                _ROW_H - 5, colour, r.name, r.value, r.tip,
                _NAME_W + round(_HBAR_W * r.value / peak, 1) + 6, 4 + i * _ROW_H + 13, r.label,
            )
            for i, r in enumerate(rows)
        ),
    )  # fmt: skip
    return format_html(
        '<figure class="dashboard-chart {}"><figcaption>{}</figcaption>'
        '<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" viewBox="0 0 {} {}" '
        'role="img" aria-label="{}">'
        '<line x1="{}" y1="0" x2="{}" y2="{}" stroke="#8c959f"/>{}</svg></figure>',
        css_class, title, width, height, width, height, title,
        _NAME_W, _NAME_W, height, items,
    )  # fmt: skip

"""The alerts scan: the event log's agent errors and budget refusals, read after the "alerts"
cursor up to the safe watermark, become email alerts (system.notify.alerts).

Beat runs it every ALERTS_SCAN_SECONDS. One scan at a time holds the cursor row (locked with
SKIP LOCKED: a second scan finds it taken and leaves); the alerts it records and the cursor's
advance commit together, so a scan that dies records nothing and the next one reads the same
entries again. A new cursor starts at the log's head: no alerts for history.
"""

from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q

from agents.selectors import agent_creators
from system.eventlog import watermark
from system.kernel.principal import SERVICE_USER_PREFIX
from system.kernel.roles import ADMIN
from system.models import EventLogEntry, LogCursor
from system.notify import alerts

CURSOR = "alerts"
BATCH = 500
STATUS_EVENT = "agent_status_update"
BUDGET_EVENT = "agent_budget_exceeded"
PLATFORM = "platform"


def alerts_scan(*, limit: int = BATCH) -> int:
    """Alert on the entries after the cursor (at most `limit`) and advance it. Returns how
    many alerts were recorded."""
    with transaction.atomic():
        cursor = LogCursor.objects.select_for_update(skip_locked=True).filter(name=CURSOR).first()
        if cursor is None:
            if LogCursor.objects.filter(name=CURSOR).exists():
                return 0  # another scan holds it
            LogCursor.objects.get_or_create(
                name=CURSOR, defaults={"last_event_id": watermark.read()}
            )
            return 0
        upto = watermark.read()
        entries = list(
            EventLogEntry.objects.filter(
                Q(event_type=STATUS_EVENT, payload__status="error") | Q(event_type=BUDGET_EVENT),
                event_id__gt=cursor.last_event_id,
                event_id__lte=upto,
            )
            .order_by("event_id")
            .values("event_id", "event_type", "payload", "agent_id")[:limit]
        )
        recorded = _alerts_for(entries)
        last = entries[-1]["event_id"] if len(entries) == limit else upto
        if last > cursor.last_event_id:
            cursor.last_event_id = last
            cursor.save(update_fields=["last_event_id", "updated_at"])
    return recorded


def _alerts_for(entries: list[dict[str, Any]]) -> int:
    agent_ids = {
        str(entry["payload"].get("agent_id") or entry["agent_id"])
        for entry in entries
        if entry["payload"].get("agent_id") or entry["agent_id"]
    }
    creators = agent_creators(agent_ids=sorted(agent_ids)) if agent_ids else {}
    recorded = 0
    seen: set[tuple[str, str]] = set()  # an agent refused 1,000 times in a batch: one alert
    admins: list[int] | None = None
    for entry in entries:
        data = entry["payload"]
        agent_id = str(data.get("agent_id") or entry["agent_id"] or "")
        is_error = entry["event_type"] == STATUS_EVENT
        platform = not is_error and data.get("budget") == PLATFORM
        subject = (entry["event_type"], PLATFORM if platform else agent_id)
        if subject in seen:
            continue
        seen.add(subject)
        creator, name = creators.get(agent_id, (None, data.get("name") or agent_id))
        if is_error:
            recorded += _send(
                [creator],
                alerts.AGENT_ERROR,
                agent_id,
                {"agent_id": agent_id, "agent_name": name, "reason": data.get("reason", "")},
            )
            continue
        context = {
            "budget": data.get("budget"),
            "agent_id": agent_id,
            "agent_name": name,
            "daily_budget_usd": data.get("daily_budget_usd"),
            "spent_usd": data.get("spent_usd"),
        }
        if platform:
            context["budget_label"] = "the platform"
            admins = _admin_ids() if admins is None else admins
            recorded += _send(admins, alerts.BUDGET_REACHED, PLATFORM, context)
        else:
            context["budget_label"] = f"agent {name}"
            recorded += _send([creator], alerts.BUDGET_REACHED, agent_id, context)
    return recorded


def _send(recipients: list[int | None], kind: str, subject_key: str, context: dict) -> int:
    return sum(
        alerts.alert_send(recipient_id=user_id, kind=kind, subject_key=subject_key, context=context)
        for user_id in recipients
        if user_id is not None
    )


def _admin_ids() -> list[int]:
    """Active people holding the admin role: superusers and the admin group's members (not a
    standalone key's service user)."""
    return list(
        get_user_model()
        .objects.filter(Q(is_superuser=True) | Q(groups__name=ADMIN), is_active=True)
        .exclude(username__startswith=SERVICE_USER_PREFIX)
        .order_by("pk")
        .values_list("pk", flat=True)
        .distinct()
    )

"""The deprecation hook: the first call of the day of a deprecated operation by a principal
becomes a `deprecated_endpoint` alert (system.kernel.deprecation's deprecated_endpoint_used).

Every call costs one pipelined Redis round trip (INCR + EXPIRE of a counter per principal,
operation and UTC day) and no database write; only the first call of the day (the counter at
1) records the alert. The email, sent a moment later, reads the counter again for "how often".
Without Redis nothing is counted or sent (one warning a minute at most): a request never
fails because of an alert.
"""

import logging
import time
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.http import http_date

from system.kernel.principal import Principal
from system.kernel.redis_client import get_redis
from system.models import ApiKey
from system.notify import alerts

logger = logging.getLogger(__name__)

COUNTER_PREFIX = "371os:deprecated:"
COUNTER_TTL_SECONDS = 2 * 24 * 3600
WARN_EVERY_SECONDS = 60.0
_warned_at = [-WARN_EVERY_SECONDS]


def deprecated_call_count(*, principal: Principal, operation: str) -> tuple[str, int]:
    """Count one call of `operation` by `principal` today; returns (counter key, count)."""
    day = timezone.now().date().isoformat()
    key = f"{COUNTER_PREFIX}{day}:{principal.id}:{operation}"
    pipeline = get_redis().pipeline(transaction=False)
    pipeline.incr(key)
    pipeline.expire(key, COUNTER_TTL_SECONDS)
    count, _ = pipeline.execute()
    return key, int(count)


def deprecated_endpoint_alert(
    *, principal: Principal, method: str, path: str, sunset: datetime, link: str, **_: Any
) -> None:
    """The receiver of deprecated_endpoint_used (connected in NotifyConfig.ready). Never
    raises."""
    operation = f"{method} {path}"
    try:
        counter_key, count = deprecated_call_count(principal=principal, operation=operation)
    except Exception as exc:  # noqa: BLE001 - Redis down or misconfigured: skip, never fail
        now = time.monotonic()
        if now - _warned_at[0] >= WARN_EVERY_SECONDS:
            _warned_at[0] = now
            logger.warning("deprecated-endpoint alerts skipped (%s)", type(exc).__name__)
        return
    if count != 1:
        return
    try:
        recipient_id, who = _recipient(principal)
        if recipient_id is None:
            logger.info("deprecated-endpoint alert for %s skipped: nobody to tell", principal.id)
            return
        with transaction.atomic():
            alerts.alert_send(
                recipient_id=recipient_id,
                kind=alerts.DEPRECATED_ENDPOINT,
                subject_key=f"{principal.id} {operation}",
                context={
                    "principal": who,
                    "method": method,
                    "path": path,
                    "sunset": http_date(sunset.timestamp()),
                    "link": settings.PUBLIC_BASE_URL + link,
                    "counter_key": counter_key,
                    "calls": count,
                },
            )
    except Exception:
        logger.exception("deprecated-endpoint alert for %s not recorded", principal.id)


def _recipient(principal: Principal) -> tuple[int | None, str]:
    """Who hears of a principal's calls, and how the email names the caller: a user (JWT, or
    a key made for them) themselves; a standalone key its creator."""
    if principal.api_key_id is None:
        return principal.user_id, f"Your account ({principal.username})"
    key = ApiKey.objects.filter(pk=principal.api_key_id).values("name", "created_by_id").first()
    name = f'Your API key "{key["name"]}"' if key else "Your API key"
    if not principal.is_standalone_key:
        return principal.user_id, name
    return (key["created_by_id"] if key else None), f"{name} ({principal.username})"

"""ElizaOS-compatible sessions: /api/messaging/sessions, ElizaOS 1.7.2's shapes and codes over
the same Session rows (see ../shared/spec/elizaos-compat.md). Bodies are bare JSON; errors are
ElizaOS's `{success: false, error: {code, message, details}}` (with our timestamp and request
id) and the domain error's real status and headers (429 + Retry-After, 402, 502, 503, ...)
except where ElizaOS answers a named code with another status."""

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions as drf_exceptions
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from agents.models import Agent
from messaging.models import Message
from sessions_app import eliza_messages, representations, selectors, services, timeouts
from sessions_app.exceptions import SessionNotFound
from sessions_app.exchange import session_message
from sessions_app.models import Session
from sessions_app.sweep import LAST_SWEEP_KEY
from sessions_app.views import SessionRoutesMixin
from system.kernel.exceptions import DomainError
from system.kernel.principal import principal_from_request
from system.kernel.redis_client import get_redis

_STARTED = time.monotonic()
MAX_METADATA_CHARS = eliza_messages.MAX_METADATA_CHARS

# Our codes → ElizaOS's (code, status); any other code is upper-cased and keeps its status.
_ELIZA_CODES: dict[str, tuple[str, int]] = {
    "validation_error": ("VALIDATION_ERROR", 400),
    "invalid_timeout_config": ("VALIDATION_ERROR", 400),
    "invalid_message_content": ("VALIDATION_ERROR", 400),
    "malformed_request": ("VALIDATION_ERROR", 400),
    "agent_not_found": ("AGENT_NOT_FOUND", 404),
    "agent_not_running": ("AGENT_NOT_FOUND", 404),
    "session_not_found": ("SESSION_NOT_FOUND", 404),
    "session_ended": ("SESSION_NOT_FOUND", 404),  # ElizaOS deletes ended sessions
    "session_expired": ("SESSION_EXPIRED", 410),
    "session_renewal_limit": ("SESSION_RENEWAL_FAILED", 400),
}


class ElizaError(DomainError):
    pass


def _eliza_error(
    code: str, message: str, details: dict[str, Any] | None = None, *, status: int = 400
) -> ElizaError:
    eliza_code, status = _ELIZA_CODES.get(code, (code.upper(), status))
    return ElizaError(message, code=eliza_code, http_status=status, details=details)


def _uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return isinstance(value, str)


class ElizaSessionViewSet(SessionRoutesMixin, viewsets.ViewSet):
    """ElizaOS sessions API."""

    policy_actions = {
        **SessionRoutesMixin.policy_actions,
        "destroy": "sessions.end",
        "health": "sessions.health.read",
        "messages:get": "sessions.read",
        "messages:post": "sessions.message",
    }

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, DomainError) and not isinstance(exc, ElizaError):
            headers = exc.headers  # Retry-After of a rate limit
            exc = _eliza_error(exc.code, exc.message, exc.details, status=exc.http_status)
            exc.headers = headers
        elif isinstance(exc, drf_exceptions.ValidationError | drf_exceptions.ParseError):
            exc = _eliza_error("validation_error", "Invalid request body.", {"errors": exc.detail})
        response = super().handle_exception(exc)
        response.data = {"success": False, **response.data}
        return response

    def _session(self, request: Request, session_id: str) -> Session:
        session = selectors.session_get_visible(
            principal=principal_from_request(request), session_id=session_id
        )
        services.session_ensure_live(session)
        return session

    def _body(self, request: Request) -> dict[str, Any]:
        if not isinstance(request.data, dict):
            raise _eliza_error("validation_error", "The body must be a JSON object.")
        return request.data

    @extend_schema(responses={200: dict})
    @action(detail=False, methods=["get"])
    def health(self, request: Request) -> Response:
        counts = selectors.sessions_health_counts()
        try:
            last = get_redis().get(LAST_SWEEP_KEY)
        except Exception:  # noqa: BLE001 - no Redis: the sweep cannot be vouched for
            last = None
        interval = settings.SESSION_SWEEP_SECONDS
        fresh = last is not None and time.time() - float(last) <= 3 * interval
        return Response(
            {
                "status": "healthy" if fresh else "degraded",
                "activeSessions": counts["active"],
                "expiringSoon": counts["expiring_soon"],
                "uptime": int(time.monotonic() - _STARTED),
                "timestamp": timezone.now().isoformat(),
            }
        )

    @extend_schema(responses={200: dict}, operation_id="messaging_sessions_list")
    def list(self, request: Request) -> Response:
        visible = selectors.sessions_visible(principal=principal_from_request(request))
        now = timezone.now()
        active = visible.filter(status=Session.Status.ACTIVE, expires_at__gt=now).order_by(
            "-created_at"
        )[:1000]
        sessions = [representations.eliza_session(s, now=now) for s in active]
        return Response(
            {
                "sessions": sessions,
                "total": len(sessions),
                "stats": selectors.session_stats(queryset=visible),
            }
        )

    @extend_schema(
        request=inline_serializer(
            "ElizaSessionCreateRequest",
            fields={
                "agentId": serializers.UUIDField(help_text="A running agent's id."),
                "userId": serializers.UUIDField(),
                "metadata": serializers.DictField(required=False),
                "timeoutConfig": serializers.DictField(
                    required=False, help_text="timeoutMinutes, autoRenew, maxDurationMinutes, ..."
                ),
            },
        ),
        responses={201: dict},
    )
    def create(self, request: Request) -> Response:
        body = self._body(request)
        missing = [f for f in ("agentId", "userId") if not body.get(f)]
        if missing:
            raise _eliza_error(
                "validation_error",
                f"Missing required fields: {', '.join(missing)}",
                {"missingFields": missing},
            )
        for field in ("agentId", "userId"):
            if not _uuid(body[field]):
                raise _eliza_error(
                    "validation_error", f"Invalid {field} format", {field: body[field]}
                )
        metadata = body.get("metadata") or {}
        if not isinstance(metadata, dict) or len(json.dumps(metadata)) > MAX_METADATA_CHARS:
            raise _eliza_error(
                "validation_error",
                f"Metadata must be an object under {MAX_METADATA_CHARS} characters",
            )
        agent = Agent.objects.filter(pk=body["agentId"]).first()
        if agent is None or agent.status != Agent.Status.RUNNING:
            raise _eliza_error(
                "agent_not_found", "Agent not found or not running", {"agentId": body["agentId"]}
            )
        session = services.session_create(
            agent=agent,
            user_id=body["userId"],
            owner=request.user,
            actor=principal_from_request(request),
            config=timeouts.clamp(body.get("timeoutConfig")),
            metadata=metadata,
        )
        return Response(representations.eliza_created(session), status=201)

    @extend_schema(responses={200: dict})
    def retrieve(self, request: Request, session_id: str) -> Response:
        return Response(representations.eliza_session(self._session(request, session_id)))

    @extend_schema(responses={200: dict})
    def destroy(self, request: Request, session_id: str) -> Response:
        session = selectors.session_get_visible(
            principal=principal_from_request(request), session_id=session_id
        )
        if session.status == Session.Status.ENDED:
            raise SessionNotFound()
        if session.status == Session.Status.ACTIVE:
            services.session_end(session=session)  # an expired one stays expired: it is gone
        return Response({"success": True, "message": f"Session {session_id} deleted successfully"})

    @extend_schema(request=None, responses={200: dict})
    @action(detail=True, methods=["post"])
    def renew(self, request: Request, session_id: str) -> Response:
        session = services.session_renew(session=self._session(request, session_id))
        return Response(representations.eliza_session(session))

    @extend_schema(request=None, responses={200: dict})
    @action(detail=True, methods=["post"])
    def heartbeat(self, request: Request, session_id: str) -> Response:
        session = services.session_heartbeat(session=self._session(request, session_id))
        return Response(representations.eliza_session(session))

    @extend_schema(request=dict, responses={200: dict})
    @action(detail=True, methods=["patch"])
    def timeout(self, request: Request, session_id: str) -> Response:
        session = self._session(request, session_id)
        config = timeouts.validate(self._body(request), base=services.session_config(session))
        session = services.session_update_timeout(session=session, config=config)
        return Response(representations.eliza_session(session))

    @extend_schema(methods=["GET", "POST"], request=dict, responses={200: dict, 201: dict})
    @action(detail=True, methods=["get", "post"])
    def messages(self, request: Request, session_id: str):
        session = self._session(request, session_id)
        if request.method == "GET":
            return self._history(request, session)
        return self._post(request, session)

    def _history(self, request: Request, session: Session) -> Response:
        params = request.query_params
        try:
            limit = min(max(int(params.get("limit", 50)), 1), 100)
        except ValueError:
            limit = 50
        messages = Message.objects.filter(channel_id=session.channel_id)
        for name, lookup in (("before", "sent_at__lt"), ("after", "sent_at__gt")):
            if params.get(name):
                try:
                    moment = datetime.fromtimestamp(int(params[name]) / 1000, tz=UTC)
                except (ValueError, OverflowError, OSError):
                    raise _eliza_error(
                        "validation_error",
                        f"Invalid {name} parameter",
                        {
                            "parameter": name,
                            "value": params[name],
                            "reason": "Not epoch milliseconds",
                        },
                    ) from None
                messages = messages.filter(**{lookup: moment})
        rows = list(messages.order_by("-sent_at", "-message_id")[: limit + 1])
        page = rows[:limit]
        return Response(
            {
                "messages": [representations.eliza_message(m) for m in page],
                "hasMore": len(rows) > limit,
                "cursors": {
                    "before": representations.epoch_ms(page[-1].sent_at) if page else None,
                    "after": representations.epoch_ms(page[0].sent_at) if page else None,
                },
            }
        )

    def _post(self, request: Request, session: Session):
        parsed = eliza_messages.message_request_parse(self._body(request), session=session)
        replies = {"sse": "caller", "http": "now", "websocket": "worker"}
        exchange = session_message(
            session=session,
            content=parsed.content,
            metadata=parsed.metadata,
            reply=replies[parsed.transport],
        )
        if parsed.transport == "sse":
            return eliza_messages.message_stream(exchange)
        answer = eliza_messages.message_answer(exchange, with_reply=parsed.transport == "http")
        return Response(answer, status=201)

"""One place that turns every error into the envelope

    {"error": {"code", "message", "details", "timestamp", "request_id"}}

for DRF views (`api_exception_handler`) and for plain Django views under /api/
(`error_response`)."""

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, JsonResponse
from django.utils import timezone
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import set_rollback

from system.kernel.exceptions import DomainError
from system.kernel.logging import request_id_var
from system.kernel.timefmt import iso_z

logger = logging.getLogger(__name__)

# DRF's exception classes → our codes. Order matters: subclasses first.
_DRF_CODES: list[tuple[type[drf.APIException], str]] = [
    (drf.ValidationError, "validation_error"),
    (drf.ParseError, "malformed_request"),
    (drf.NotAuthenticated, "authentication_required"),
    (drf.AuthenticationFailed, "invalid_token"),
    (drf.PermissionDenied, "insufficient_permissions"),
    (drf.NotFound, "not_found"),
    (drf.MethodNotAllowed, "method_not_allowed"),
    (drf.NotAcceptable, "not_acceptable"),
    (drf.UnsupportedMediaType, "unsupported_media_type"),
    (drf.Throttled, "rate_limit_exceeded"),
]


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "details": details if details is not None else {},
            "timestamp": iso_z(timezone.now()),
            "request_id": request_id_var.get(),
        }
    }


def error_response(code: str, message: str, status: int, details: Any = None) -> JsonResponse:
    """The envelope for plain Django views (health, the /api/ catch-all, handler500)."""
    response = JsonResponse(error_body(code, message, details), status=status)
    response.error_code = code  # for the request counters' recent API errors (system.ops)
    return response


def _message_of(exc: drf.APIException) -> tuple[str, Any]:
    """A human message and the structured details of one of DRF's exceptions."""
    detail = exc.detail
    if isinstance(exc, drf.ValidationError):
        details = detail if isinstance(detail, dict) else {"non_field_errors": detail}
        return "The request body is invalid.", details
    if isinstance(detail, (list, dict)):
        return str(exc.default_detail), detail
    return str(detail), {}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF's EXCEPTION_HANDLER: every exception, expected or not, becomes the envelope.

    Like DRF's own handler it marks an ATOMIC_REQUESTS transaction for rollback, so nothing a
    failed request wrote survives it. Unexpected exceptions are logged with their traceback and
    answered with a generic 500 that carries no exception text.
    """
    headers: dict[str, str] = {}
    if isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied()

    if isinstance(exc, DomainError):
        body = error_body(exc.code, exc.message, exc.details)
        status = exc.http_status
        headers.update(exc.headers)
    elif isinstance(exc, drf.APIException):
        # An exception may name its own code and details (system.auth's credential errors).
        code = getattr(exc, "error_code", None) or next(
            (c for cls, c in _DRF_CODES if isinstance(exc, cls)), "bad_request"
        )
        message, details = _message_of(exc)
        details = getattr(exc, "error_details", None) or details
        if isinstance(exc, drf.Throttled) and exc.wait is not None:
            headers["Retry-After"] = str(int(exc.wait))
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        body = error_body(code, message, details)
        status = exc.status_code
    else:
        logger.exception("unhandled exception in %s", type(context.get("view")).__name__)
        body = error_body("internal_error", "An internal error occurred.")
        status = 500

    set_rollback()
    response = Response(body, status=status, headers=headers)
    response.error_code = body["error"]["code"]  # for the recent API errors (system.ops)
    return response


def handler404(request: HttpRequest, exception: Exception | None = None):
    """404 for paths no URL pattern matches: the envelope under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return error_response("not_found", "No such endpoint.", 404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def handler500(request: HttpRequest):
    if request.path.startswith("/api/"):
        return error_response("internal_error", "An internal error occurred.", 500)
    from django.views.defaults import server_error

    return server_error(request)

"""The domain error hierarchy: every error a client sees is one of these, rendered as the
envelope `{"error": {"code", "message", "details", "timestamp", "request_id"}}` by
`system.errors.api_exception_handler`.
"""

from typing import Any


class DomainError(Exception):
    """Base class: subclasses set `code`, `http_status` and a default `message`."""

    code: str = "bad_request"
    http_status: int = 400
    message: str = "The request could not be processed."

    def __init__(
        self,
        message: str | None = None,
        *,
        details: dict[str, Any] | None = None,
        code: str | None = None,
        http_status: int | None = None,
    ) -> None:
        self.message = message or self.message
        self.details = details or {}
        self.headers: dict[str, str] = {}
        if code is not None:
            self.code = code
        if http_status is not None:
            self.http_status = http_status
        super().__init__(self.message)


class ValidationFailed(DomainError):
    code = "validation_error"
    http_status = 400
    message = "The request body is invalid."


class NotFound(DomainError):
    code = "not_found"
    http_status = 404
    message = "The requested resource was not found."


class Conflict(DomainError):
    code = "conflict"
    http_status = 409
    message = "The request conflicts with the current state of the resource."


class PermissionDeniedError(DomainError):
    code = "insufficient_permissions"
    http_status = 403
    message = "You do not have permission to perform this action."


class ServiceUnavailable(DomainError):
    code = "service_unavailable"
    http_status = 503
    message = "The service is temporarily unavailable."


class InvalidCredentials(DomainError):
    code = "invalid_credentials"
    http_status = 401
    message = "Invalid username or password."


class InvalidToken(DomainError):
    code = "invalid_token"
    http_status = 401
    message = "The token is invalid, expired or revoked."

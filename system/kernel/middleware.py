"""Request id and access-log middleware: the first and outermost steps of every request."""

import io
import logging
import re
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import middleware as auth_middleware
from django.contrib.messages import middleware as messages_middleware
from django.contrib.sessions import middleware as sessions_middleware
from django.core.handlers.wsgi import LimitedStream
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from system.kernel.errors import error_response
from system.kernel.logging import request_id_var
from system.kernel.permissions import count_login_attempt
from system.kernel.ratelimit import RateLimitExceeded

access_logger = logging.getLogger("system.request")

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class RequestIdMiddleware:
    """Honour a safe incoming `X-Request-ID` or make one; echo it and expose it to logging."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response


class AccessLogMiddleware:
    """One line per request. The path is logged without its query string, which may carry
    tokens (the WebSocket `token` parameter, for one)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        duration_ms = (time.perf_counter() - started) * 1000
        access_logger.info(
            "%s %s %s %.1fms principal=%s",
            request.method,
            request.path,
            response.status_code,
            duration_ms,
            principal_label(request),
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round(duration_ms, 1),
            },
        )
        return response


def principal_label(request: HttpRequest) -> str:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return "-"
    prefix = getattr(getattr(request, "auth", None), "prefix", None)
    return f"{user.get_username()}/key:{prefix}" if prefix else user.get_username()


def _too_large() -> HttpResponse:
    return error_response(
        "payload_too_large",
        "The request body is too large.",
        413,
        {"max_bytes": settings.MAX_REQUEST_BODY_BYTES},
    )


def _read_at_most(stream, limit: int) -> bytes:
    """Up to `limit` + 1 bytes of `stream`: one more than allowed tells "too large" apart."""
    parts, size = [], 0
    while size <= limit:
        part = stream.read(min(_READ_CHUNK, limit + 1 - size))
        if not part:
            break
        parts.append(part)
        size += len(part)
    return b"".join(parts)


_READ_CHUNK = 64 * 1024


class RequestSizeLimitMiddleware:
    """Bodies over MAX_REQUEST_BODY_BYTES are refused (413) before anything reads them.

    A body sent with `Transfer-Encoding: chunked` has no Content-Length, and Django's WSGI
    request reads such a body as empty (the request bounds its stream by Content-Length). So
    it is read here, at most one byte past the limit (the limit is enforced while reading, not
    after buffering it all), and handed on as an ordinary body of known length."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.MAX_REQUEST_BODY_BYTES
        declared = request.META.get("CONTENT_LENGTH")
        chunked = "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked and not declared:
            # WSGI: the server's input stream; ASGI: the body the handler already spooled.
            stream = request.META.get("wsgi.input") or request._stream
            body = _read_at_most(stream, limit)
            if len(body) > limit:
                return _too_large()
            request._stream = LimitedStream(io.BytesIO(body), len(body))
            request.META["CONTENT_LENGTH"] = str(len(body))
            return self.get_response(request)
        try:
            length = int(declared or 0)
        except ValueError:
            length = 0
        if length > limit:
            return _too_large()
        return self.get_response(request)


class RateLimitHeadersMiddleware:
    """Adds X-RateLimit-* to responses whose request was counted (system.permissions)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        state = getattr(request, "rate_limit", None)
        if state is not None:
            for name, value in state.headers().items():
                response[name] = value
        return response


class AdminLoginThrottleMiddleware:
    """Password attempts on the admin login page are counted like the token endpoint's (per
    address and per username, failing closed): past the limit, or while Redis is away, the
    attempt is answered 429 with Retry-After before any password is checked."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.login_path: str | None = None

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method == "POST":
            if self.login_path is None:
                self.login_path = reverse("admin:login")
            if request.path == self.login_path:
                try:
                    count_login_attempt(request, username=request.POST.get("username", ""))
                except RateLimitExceeded as exc:
                    response = HttpResponse(
                        "Too many login attempts. Try again later.\n",
                        status=429,
                        content_type="text/plain; charset=utf-8",
                    )
                    for name, value in exc.headers.items():
                        response[name] = value
                    return response
        return self.get_response(request)


class _BrowserOnly:
    """Runs the Django middleware it is mixed into only for the pages a browser uses with
    cookies (the admin, the landing page, the API docs). Requests under `/api/` skip it:
    every API request authenticates with its own credentials (an API key or a JWT,
    system.auth; DRF sets `request.user`), so a session store, a lazy user and a message
    store would be built on every request for nobody to read."""

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith("/api/"):
            return self.get_response(request)
        return super().__call__(request)


class SessionMiddleware(_BrowserOnly, sessions_middleware.SessionMiddleware):
    pass


class AuthenticationMiddleware(_BrowserOnly, auth_middleware.AuthenticationMiddleware):
    pass


class MessageMiddleware(_BrowserOnly, messages_middleware.MessageMiddleware):
    pass

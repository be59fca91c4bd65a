from system.kernel.exceptions import Conflict, DomainError, NotFound


class SessionNotFound(NotFound):
    code = "session_not_found"
    message = "Session not found."


class SessionExpired(DomainError):
    code = "session_expired"
    http_status = 410
    message = "The session has expired."


class SessionEnded(Conflict):
    code = "session_ended"
    message = "The session has ended."


class SessionRenewalLimit(DomainError):
    code = "session_renewal_limit"
    http_status = 422
    message = "The session has reached its maximum duration and cannot be renewed."


class SessionBusy(Conflict):
    """The session's agent is still answering an earlier message (its reply lease is held).
    Carries Retry-After."""

    code = "session_busy"
    message = "The session's agent is still answering an earlier message; retry shortly."

from system.kernel.exceptions import DomainError, NotFound, PermissionDeniedError


class ChannelNotFound(NotFound):
    code = "channel_not_found"
    message = "Channel not found."


class MessageNotFound(NotFound):
    code = "message_not_found"
    message = "Message not found."


class InvalidMessageContent(DomainError):
    code = "invalid_message_content"
    http_status = 400
    message = "Message content validation failed."


class MessageNotEditable(PermissionDeniedError):
    message = "Only the principal that posted a message may edit it."

from system.kernel.exceptions import Conflict, DomainError, NotFound, PermissionDeniedError


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


class SenderNotAllowed(DomainError):
    code = "sender_not_allowed"
    http_status = 403
    message = "The sender names another local principal: post as yourself or as an external id."


class ChannelOwnerNotRemovable(Conflict):
    code = "owner_not_removable"
    message = "The channel's owner cannot be removed from it."

"""What every room's back office shares."""

from django.http import HttpRequest


class ReadOnlyAdminMixin:
    """For rows that only services write (the event log, system tasks): the back office shows
    them and never adds, changes or deletes one. Put it before `admin.ModelAdmin`."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

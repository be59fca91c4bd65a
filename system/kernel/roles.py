"""The spec's four roles. A role is a Django group of the same name (made by a data
migration); a superuser holds `admin`; an API key carries its own subset."""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

ADMIN = "admin"
AGENT_MANAGER = "agent_manager"
MESSAGING = "messaging"
SYSTEM_MONITOR = "system_monitor"
ROLES: tuple[str, ...] = (ADMIN, AGENT_MANAGER, MESSAGING, SYSTEM_MONITOR)


def user_roles(user: AbstractBaseUser | AnonymousUser) -> frozenset[str]:
    if not user.is_authenticated or not user.is_active:
        return frozenset()
    roles = {name for name in user.groups.values_list("name", flat=True) if name in ROLES}
    if user.is_superuser:
        roles.add(ADMIN)
    return frozenset(roles)
